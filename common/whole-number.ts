/**
 * The whole-number check under common/flags.ts' wholeNumber coercer: yargs' `type: 'number'` lets 1.5 and NaN
 * through, and an environment variable is a string.
 */

/** `value` as a whole number ≥ `min` (a string is read as a number), or the message that says why it is not one. */
export function wholeNumber(name: string, value: unknown, min: number): number | string {
  const n = typeof value === 'string' ? Number(value) : value;
  return typeof n === 'number' && Number.isInteger(n) && n >= min
    ? n
    : `${name} must be a whole number ≥ ${min}, got ${String(value)}`;
}
