import { describe, expect, it } from 'vitest';
import { budgetKey } from '../../../controller/budget/pool-key.js';

describe('budgetKey', () => {
  const url = 'postgres://midi:secret@db.music.svc:5432/midi';

  it("is the server's host:port, whatever the database and credentials", () => {
    expect(budgetKey({}, url)).toMatch(/^server-[0-9a-f]{16}$/);
    expect(budgetKey({}, 'postgres://other:pw@DB.music.svc/other')).toBe(budgetKey({}, url));
  });

  it("behind a pooler is the pooler's address, a key apart from a server's at the same address", () => {
    const behind = budgetKey({ pooler: {} }, url);
    expect(behind).toMatch(/^pooler-[0-9a-f]{16}$/);
    expect(behind.slice('pooler-'.length)).toBe(budgetKey({}, url).slice('server-'.length));
    expect(budgetKey({ pooler: {} }, 'postgres://other:pw@db.music.svc:5432/other')).toBe(behind);
  });

  it('is the poolKey when one is given, pooler or not', () => {
    expect(budgetKey({ poolKey: 'shared', pooler: {} }, url)).toBe('key-shared');
    expect(budgetKey({ poolKey: 'shared' }, url)).toBe('key-shared');
  });
});
