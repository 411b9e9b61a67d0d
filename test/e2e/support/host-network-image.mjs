// The project image as the end-to-end tests run it on the process kubelet.
//
// The process kubelet runs every pod on the machine's own network (as hostNetwork), so the two controller replicas
// of the Deployment, and the controllers of two test files running at once, would all bind the same fixed metrics and
// health ports: the second one to start dies with EADDRINUSE. This entrypoint is the image's `node dist/cli/main.js`
// with one difference: `--metrics-port` and `--health-port` become 0 (a free port each). Every other argument, and
// every other command (scan, run-shard), is passed through unchanged.
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const main = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../dist/cli/main.js');
const args = [];
const given = process.argv.slice(2);
for (let i = 0; i < given.length; i++) {
  const arg = given[i];
  const joined = /^--(metrics|health)-port=.*$/.exec(arg);
  if (joined) {
    args.push(`--${joined[1]}-port=0`);
  } else if (arg === '--metrics-port' || arg === '--health-port') {
    args.push(arg, '0');
    i++;
  } else {
    args.push(arg);
  }
}
process.argv = [process.argv[0], main, ...args];
await import(pathToFileURL(main).href);
