import { spawnSync } from 'node:child_process';
import path from 'node:path';

/** Where Debian puts chromium; playwright-core drives it (its own browser download needs a CDN we cannot reach). */
export const CHROMIUM = '/usr/bin/chromium';

const DEPS_SCRIPT = path.resolve('test', 'support', 'chromium-deps.sh');

/**
 * Makes sure Debian's chromium is installed (test/support/chromium-deps.sh: apt-get as root, under the project's apt
 * lock, on first use only), so a fresh CI machine runs the browser tests. Returns why it is unavailable, or null when
 * it is ready. Under CI=true it throws instead: a browser test that skips in CI would never fail there.
 */
export function ensureChromium(): string | null {
  const run = spawnSync('bash', [DEPS_SCRIPT], { encoding: 'utf8', stdio: ['ignore', 'inherit', 'pipe'] });
  if (run.status === 0) return null;
  const why = `chromium is not available: ${run.stderr.trim() || `chromium-deps.sh exited ${run.status}`}`;
  if (process.env.CI === 'true') throw new Error(`${why} (CI=true: failing rather than skipping)`);
  return why;
}
