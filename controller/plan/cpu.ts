/**
 * CPU quantities as the Downward API hands them to the runner: `resourceFieldRef: requests.cpu, divisor: 1m` gives
 * ceil(quantity / 1m). The controller must compute the very same number, or its budget would size a different pool
 * than the one the runner opens.
 */

const CPU = /^(\d+(?:\.\d*)?|\.\d+)(m|k|M|G)?$/;
const SCALE: Record<string, number> = { m: 1, '': 1000, k: 1e6, M: 1e9, G: 1e12 };

/** Millicores of a CPU quantity (`2`, `1.5`, `500m`), rounded up; undefined when it is not a positive CPU amount. */
export function cpuMillis(quantity: string | number | undefined): number | undefined {
  if (quantity === undefined) return undefined;
  const match = CPU.exec(String(quantity).trim());
  if (!match) return undefined;
  const millis = Math.ceil(Number(match[1]) * SCALE[match[2] ?? '']! - 1e-9);
  return Number.isSafeInteger(millis) && millis > 0 ? millis : undefined;
}
