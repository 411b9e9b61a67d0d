import { describe, expect, it } from 'vitest';
import { pgJson, pgText } from '../../../job-runner/db/text.js';

describe('text bound for Postgres', () => {
  it('drops NUL and replaces lone surrogates, keeping valid pairs', () => {
    expect(pgText('Pi\u0000ano')).toBe('Piano');
    expect(pgText('a\ud800b')).toBe('a\ufffdb');
    expect(pgText('a\udc00b')).toBe('a\ufffdb');
    expect(pgText('🎹')).toBe('🎹');
  });
  it('cleans every string inside JSON', () => {
    expect(JSON.parse(pgJson({ name: 'x\u0000y', list: ['\ud83d'] }))).toEqual({ name: 'xy', list: ['\ufffd'] });
  });
});
