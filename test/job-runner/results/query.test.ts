import { describe, expect, it } from 'vitest';
import { alignedTable, csvTable, jsonLines, type QueryResult } from '../../../job-runner/results/query.js';

describe("query's output formats", () => {
  const result: QueryResult = {
    columns: ['key', 'files', 'note'],
    rows: [
      ['A minor', '12', null],
      ['C# major', '3', 'two\nlines, "quoted"'],
    ],
  };

  it('aligns like psql: headers centred, numbers right, text left, NULL blank, a row count', () => {
    expect(alignedTable(result)).toBe(
      [
        '   key    | files |        note',
        '----------+-------+---------------------',
        ' A minor  |    12 |',
        ' C# major |     3 | two↵lines, "quoted"',
        '(2 rows)',
        '',
      ].join('\n'),
    );
    expect(
      alignedTable({ columns: ['n'], rows: [['1']] })
        .trimEnd()
        .split('\n')
        .at(-1),
    ).toBe('(1 row)');
    expect(alignedTable({ columns: ['n'], rows: [] })).toBe(' n\n---\n(0 rows)\n');
  });

  it('writes CSV with quoting and JSON Lines with nulls', () => {
    expect(csvTable(result)).toBe('key,files,note\r\nA minor,12,\r\nC# major,3,"two\nlines, ""quoted"""\r\n');
    expect(
      jsonLines(result)
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l) as unknown),
    ).toEqual([
      { key: 'A minor', files: '12', note: null },
      { key: 'C# major', files: '3', note: 'two\nlines, "quoted"' },
    ]);
  });
});
