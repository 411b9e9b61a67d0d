/** Reading client-node 1.4 errors: ApiException carries the HTTP status in `code`, watches put it in `statusCode`. */

export function statusOf(err: unknown): number | undefined {
  const e = err as { code?: unknown; statusCode?: unknown } | undefined;
  if (typeof e?.code === 'number') return e.code;
  if (typeof e?.statusCode === 'number') return e.statusCode;
  return undefined;
}

export const isNotFound = (err: unknown): boolean => statusOf(err) === 404;
/** 409: someone else wrote first (resourceVersion mismatch) or the object already exists. Requeue now, not an error. */
export const isConflict = (err: unknown): boolean => statusOf(err) === 409;
export const isAlreadyExists = isConflict;

/** A short description of an API error without its body (which may echo the request, and so a secret). */
export function describeApiError(err: unknown): string {
  const status = statusOf(err);
  const e = err as { body?: unknown; message?: string };
  let reason = '';
  if (typeof e?.body === 'string') {
    try {
      const status = JSON.parse(e.body) as { reason?: string; message?: string };
      reason = [status.reason, status.message].filter(Boolean).join(': ');
    } catch {
      reason = '';
    }
  } else if (e?.body && typeof e.body === 'object') {
    const b = e.body as { reason?: string; message?: string };
    reason = [b.reason, b.message].filter(Boolean).join(': ');
  }
  return `${status ?? 'error'}${reason ? ` ${reason}` : e?.message ? ` ${e.message.split('\n')[0]}` : ''}`;
}
