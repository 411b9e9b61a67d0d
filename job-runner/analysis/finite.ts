/**
 * Where, if anywhere, a value holds a number that is not finite: `path.to[2].field = NaN`, or null when all are.
 * JSON has no NaN (JSON.stringify writes null), and the database refuses NaN and ±Infinity in every numeric column,
 * so an analysis carrying one is recorded as a failure that names the field rather than failing its whole batch:
 * analyzeMidi checks its result, and the store checks again what it is given (split tracks too) before writing.
 */
export function firstNonFinite(value: unknown, path = ''): string | null {
  if (typeof value === 'number') return Number.isFinite(value) ? null : `${path || '(value)'} = ${value}`;
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) {
      const found = firstNonFinite(value[i], `${path}[${i}]`);
      if (found) return found;
    }
    return null;
  }
  if (value !== null && typeof value === 'object') {
    for (const [k, v] of Object.entries(value)) {
      const found = firstNonFinite(v, path ? `${path}.${k}` : k);
      if (found) return found;
    }
  }
  return null;
}
