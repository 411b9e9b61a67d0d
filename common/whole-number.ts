/**
 * Whole-number checks for command-line flags and environment variables: yargs' `type: 'number'` lets 1.5 and NaN
 * through, and an environment variable is a string.
 */

/** `value` as a whole number ≥ `min` (a string is read as a number), or the message that says why it is not one. */
export function wholeNumber(name: string, value: unknown, min: number): number | string {
  const n = typeof value === 'string' ? Number(value) : value;
  return typeof n === 'number' && Number.isInteger(n) && n >= min
    ? n
    : `${name} must be a whole number ≥ ${min}, got ${String(value)}`;
}

/** For yargs' .check(): throws for the first flag of `minimums` given a value that is not a whole number ≥ its minimum. */
export function checkWholeNumbers(args: Record<string, unknown>, minimums: Record<string, number>): true {
  for (const [flag, min] of Object.entries(minimums)) {
    if (args[flag] === undefined) continue;
    const checked = wholeNumber(`--${flag}`, args[flag], min);
    if (typeof checked === 'string') throw new Error(checked);
  }
  return true;
}
