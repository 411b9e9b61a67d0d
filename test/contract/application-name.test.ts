import { describe, expect, it } from 'vitest';
import { APPLICATION_NAME_MAX_BYTES, applicationNameFor } from '../../contract/application-name.js';

describe('applicationNameFor', () => {
  const table = [
    {
      name: 'names role, corpus, shard and pod',
      owner: { role: 'run', corpus: 'default/bach', shard: 3, pod: 'bach-run-3-x7k2p' },
      want: 'mco run default/bach s3 bach-run-3-x7k2p',
    },
    { name: 'leaves out what is not known', owner: { role: 'scan', corpus: 'lakh' }, want: 'mco scan lakh' },
    { name: 'shard 0 is a shard', owner: { role: 'run', corpus: 'c', shard: 0 }, want: 'mco run c s0' },
    { name: 'non-ASCII becomes ?', owner: { role: 'run', corpus: 'chorälе' }, want: 'mco run chor?l?' },
    {
      name: 'a long corpus name is cut first, marked with ~',
      owner: {
        role: 'run',
        corpus: 'team-a/an-extremely-long-corpus-name-that-goes-on-and-on',
        shard: 12,
        pod: 'pod-12-abcde',
      },
      want: 'mco run team-a/an-extremely-long-corpus-name-~ s12 pod-12-abcde',
    },
    {
      name: 'a pod name too long on its own keeps its unique end',
      owner: { role: 'run', corpus: 'c', shard: 1, pod: `p-${'x'.repeat(80)}-tail9` },
      want: `mco run ~${'x'.repeat(48)}-tail9`,
    },
  ];
  for (const row of table) {
    it(row.name, () => {
      const got = applicationNameFor(row.owner);
      expect(got).toBe(row.want);
      expect(Buffer.byteLength(got)).toBeLessThanOrEqual(APPLICATION_NAME_MAX_BYTES);
    });
  }
});
