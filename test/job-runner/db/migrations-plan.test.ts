import { describe, expect, it } from 'vitest';
import {
  checksumOf,
  fencesOutLegacy,
  LAST_LEGACY_VERSION,
  mergeLedgers,
  MigrationChecksumError,
  MIGRATIONS,
  planMigrations,
  SchemaTooNewError,
  type Migration,
  type RecordedMigration,
} from '../../../job-runner/db/migrations.js';

const expand = (version: number, sql = `SELECT ${version}`): Migration => ({
  version,
  name: `m${version}`,
  sql,
  kind: 'expand',
});
const contract = (version: number, compatibleFrom: number): Migration => ({
  version,
  name: `m${version}`,
  sql: `SELECT ${version}`,
  kind: 'contract',
  compatibleFrom,
});
const recorded = (...ms: Migration[]): RecordedMigration[] =>
  ms.map((m) => ({
    version: m.version,
    name: m.name,
    checksum: checksumOf(m),
    kind: m.kind,
    compatibleFrom: m.kind === 'contract' ? m.compatibleFrom : null,
  }));

describe('planMigrations: what the database records × what the code carries', () => {
  const [e1, e2, e3, e5] = [expand(1), expand(2), expand(3), expand(5)];
  const table: {
    name: string;
    code: Migration[];
    recorded: RecordedMigration[];
    contract?: boolean;
    want: { apply: number[]; deferred: number[] } | { refuse: RegExp };
  }[] = [
    {
      name: 'a fresh database gets everything, in order',
      code: [e1, e2, e3],
      recorded: [],
      want: { apply: [1, 2, 3], deferred: [] },
    },
    {
      name: 'a partly migrated database gets the rest',
      code: [e1, e2, e3],
      recorded: recorded(e1),
      want: { apply: [2, 3], deferred: [] },
    },
    {
      name: 'a current database gets nothing',
      code: [e1, e2, e3],
      recorded: recorded(e1, e2, e3),
      want: { apply: [], deferred: [] },
    },
    {
      name: 'older code runs on past expand steps it does not know',
      code: [e1, e2, e3],
      recorded: recorded(e1, e2, e3, expand(4), e5),
      want: { apply: [], deferred: [] },
    },
    {
      name: 'older code runs on past a contract step it is new enough for',
      code: [e1, e2, e3],
      recorded: recorded(e1, e2, e3, expand(4), contract(5, 3)),
      want: { apply: [], deferred: [] },
    },
    {
      name: 'older code refuses a contract step that needs newer code, naming it',
      code: [e1, e2, e3],
      recorded: recorded(e1, e2, e3, expand(4), contract(5, 4)),
      want: {
        refuse:
          /^database has migration 5 \(m5\), a contract step .* migration 4 or later works with; this release knows migrations up to 3: upgrade/,
      },
    },
    {
      name: 'of two contract steps too new, the refusal names the one that needs the newest code',
      code: [e1, e2],
      recorded: recorded(e1, e2, contract(3, 3), expand(4), contract(5, 4)),
      want: { refuse: /migration 5 \(m5\).* migration 4 or later/ },
    },
    {
      name: 'a runner leaves its own contract step for migrate --contract and applies the expand step after it',
      code: [e1, e2, e3, contract(4, 3), e5],
      recorded: recorded(e1, e2, e3),
      want: { apply: [5], deferred: [4] },
    },
    {
      name: 'migrate --contract applies the contract step, in order',
      code: [e1, e2, e3, contract(4, 3), e5],
      recorded: recorded(e1, e2, e3),
      contract: true,
      want: { apply: [4, 5], deferred: [] },
    },
    {
      name: 'migrate --contract after the runners: only the step they left',
      code: [e1, e2, e3, contract(4, 3), e5],
      recorded: recorded(e1, e2, e3, e5),
      contract: true,
      want: { apply: [4], deferred: [] },
    },
    {
      name: 'the release that carries a contract step runs with it in',
      code: [e1, e2, e3, contract(4, 4)],
      recorded: recorded(e1, e2, e3, contract(4, 4)),
      want: { apply: [], deferred: [] },
    },
    {
      name: 'the release before it refuses once it is in',
      code: [e1, e2, e3],
      recorded: recorded(e1, e2, e3, contract(4, 4)),
      want: { refuse: /migration 4 \(m4\).* up to 3/ },
    },
  ];
  for (const row of table) {
    it(row.name, () => {
      const plan = () => planMigrations(row.recorded, row.code, { contract: row.contract });
      if ('refuse' in row.want) {
        expect(plan).toThrow(SchemaTooNewError);
        expect(plan).toThrow(row.want.refuse);
        return;
      }
      const got = plan();
      expect({ apply: got.apply.map((m) => m.version), deferred: got.deferred.map((m) => m.version) }).toEqual(
        row.want,
      );
    });
  }

  it('refuses when an applied migration was edited afterwards', () => {
    expect(() => planMigrations(recorded(expand(1, 'SELECT "edited"')), [e1, e2])).toThrow(MigrationChecksumError);
  });
});

describe('mergeLedgers: schema_migrations (1 to 4, and fences) with schema_steps (5 on)', () => {
  const legacy = MIGRATIONS.filter((m) => m.version <= LAST_LEGACY_VERSION);
  const legacyRows = recorded(...legacy).map(({ version, name, checksum }) => ({ version, name, checksum }));

  it('reads the legacy versions as expand steps and takes what a step is from schema_steps', () => {
    const steps = recorded(expand(5), contract(6, 5));
    const fence = { version: 6, name: 'm6', checksum: steps[1]!.checksum };
    expect(mergeLedgers([...legacyRows, fence], steps)).toEqual([...recorded(...legacy), ...steps]);
  });

  it('reads a fence with no schema_steps row as a contract step only code knowing it may pass', () => {
    const fence = { version: 9, name: 'future', checksum: '0'.repeat(64) };
    const merged = mergeLedgers([...legacyRows, fence], []);
    expect(merged.at(-1)).toEqual({ ...fence, kind: 'contract', compatibleFrom: 9 });
    expect(() => planMigrations(merged, MIGRATIONS)).toThrow(/migration 9 \(future\).* migration 9 or later/);
  });
});

describe('the migrations this release carries', () => {
  it('are numbered 1, 2, 3... with no gap', () => {
    expect(MIGRATIONS.map((m) => m.version)).toEqual(MIGRATIONS.map((_, i) => i + 1));
  });

  it('up to the last legacy version are all expand steps: released code trusts them to be', () => {
    expect(MIGRATIONS.filter((m) => m.version <= LAST_LEGACY_VERSION).every((m) => m.kind === 'expand')).toBe(true);
  });

  it('name, for each contract step, code no newer than the step itself', () => {
    const misnamed = MIGRATIONS.filter(
      (m) => m.kind === 'contract' && !(m.compatibleFrom >= 1 && m.compatibleFrom <= m.version),
    );
    expect(misnamed).toEqual([]);
  });
});

describe('fencesOutLegacy: when a step leaves a row in schema_migrations for the releases that read only it', () => {
  const table = [
    { name: 'an expand step: never', m: expand(LAST_LEGACY_VERSION + 3), want: false },
    {
      name: 'a contract step the last legacy release can run past: no',
      m: contract(LAST_LEGACY_VERSION + 3, LAST_LEGACY_VERSION),
      want: false,
    },
    {
      name: 'a contract step that needs newer code than the last legacy release: yes',
      m: contract(LAST_LEGACY_VERSION + 3, LAST_LEGACY_VERSION + 1),
      want: true,
    },
  ];
  for (const row of table) it(row.name, () => expect(fencesOutLegacy(row.m)).toBe(row.want));
});
