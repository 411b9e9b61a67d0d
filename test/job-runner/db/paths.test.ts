import { describe, expect, it } from 'vitest';
import { displayPath, rawPath } from '../../../job-runner/db/paths.js';

describe('displayPath', () => {
  const table: Array<{ name: string; bytes: number[] | string; want: string }> = [
    { name: 'plain ASCII is unchanged', bytes: 'bach/bwv846.mid', want: 'bach/bwv846.mid' },
    { name: 'valid UTF-8 is kept', bytes: 'chopin/étude €.mid', want: 'chopin/étude €.mid' },
    { name: 'four-byte characters are kept', bytes: 'emoji/🎹.mid', want: 'emoji/🎹.mid' },
    { name: 'a Latin-1 byte is escaped', bytes: [0x63, 0xe9, 0x2e, 0x6d, 0x69, 0x64], want: 'c\\xe9.mid' },
    { name: 'a truncated sequence is escaped byte by byte', bytes: [0x61, 0xe2, 0x82], want: 'a\\xe2\\x82' },
    { name: 'an overlong encoding of "/" is escaped', bytes: [0xc0, 0xaf], want: '\\xc0\\xaf' },
    { name: 'an encoded UTF-16 surrogate is escaped', bytes: [0xed, 0xa0, 0x80], want: '\\xed\\xa0\\x80' },
    { name: 'code points past U+10FFFF are escaped', bytes: [0xf4, 0x90, 0x80, 0x80], want: '\\xf4\\x90\\x80\\x80' },
    { name: 'control characters are escaped', bytes: 'a\nb\tc\x1b[31m', want: 'a\\x0ab\\x09c\\x1b[31m' },
    { name: 'a stray continuation byte is escaped, the rest decoded', bytes: [0x80, 0xc3, 0xa9], want: '\\x80é' },
  ];
  for (const row of table) {
    it(row.name, () => {
      const raw = typeof row.bytes === 'string' ? Buffer.from(row.bytes) : Buffer.from(row.bytes);
      expect(displayPath(raw)).toBe(row.want);
    });
  }
});

describe('rawPath', () => {
  it('keeps raw bytes as given and encodes strings as UTF-8', () => {
    const bytes = Buffer.from([0xff, 0x2e, 0x6d, 0x69, 0x64]);
    expect(rawPath(bytes)).toBe(bytes);
    expect(rawPath('é.mid')).toEqual(Buffer.from([0xc3, 0xa9, 0x2e, 0x6d, 0x69, 0x64]));
  });
});
