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

/**
 * How an API error should be met. `permanent`: the server will give the same answer to the same request (400 a
 * malformed request, 403 forbidden, 404 of an object the request refers to, 422 invalid), so retrying with backoff
 * only hammers it; the request must change first (a new spec) or the world around it (a Role granted). `conflict`:
 * 409, look again now. `transient`: everything else, i.e. 408, 410, 429, 5xx and errors with no status at all (a
 * reset connection, a timeout), which a retry may well cure.
 *
 * A 404 is permanent only when the missing object is one the request refers to (the namespace of a create, a
 * ServiceAccount); when it is the object the request acts on (a Job patched after someone deleted it), the cache is
 * behind and the next pass will see it gone: `missingTarget` says which one the caller's 404 would mean.
 */
export type ApiErrorKind = 'permanent' | 'conflict' | 'transient';

export function classifyApiError(err: unknown, o: { missingTarget?: boolean } = {}): ApiErrorKind {
  const status = statusOf(err);
  if (status === 409) return 'conflict';
  if (status === 400 || status === 403 || status === 422) return 'permanent';
  if (status === 404) return o.missingTarget ? 'transient' : 'permanent';
  return 'transient';
}

/** What a refusal from the API server said: its HTTP status, its `reason` (Invalid, Forbidden...) and its message. */
export interface ApiRefusal {
  code: number;
  /** The Status object's reason, or the one its HTTP code implies when the body has none. */
  reason: string;
  /** The Status object's message (for a 422: every field error), or the HTTP status line's text. */
  message: string;
}

/** The reasons metav1.Status gives for the permanent codes, for bodies that lack one (a proxy's own 403). */
const REASON_OF_CODE: Record<number, string> = { 400: 'BadRequest', 403: 'Forbidden', 404: 'NotFound', 422: 'Invalid' };

/** The Status object of an API error (client-node 1.4 gives the body as a string or parsed), if it has one. */
function statusBody(err: unknown): { reason?: unknown; message?: unknown } | undefined {
  const body = (err as { body?: unknown } | undefined)?.body;
  if (typeof body === 'string') {
    try {
      const parsed = JSON.parse(body) as unknown;
      return parsed && typeof parsed === 'object' ? (parsed as { reason?: unknown; message?: unknown }) : undefined;
    } catch {
      return undefined;
    }
  }
  return body && typeof body === 'object' ? (body as { reason?: unknown; message?: unknown }) : undefined;
}

/**
 * The refusal an API error carries, when it has an HTTP status. The message is the server's own: for a 422 it names
 * each field and what is wrong with it ("spec.template.spec.volumes[0].persistentVolumeClaim.claimName: Required
 * value"), which is what a user needs to fix the spec. It never contains the request body.
 */
export function apiRefusal(err: unknown): ApiRefusal | undefined {
  const code = statusOf(err);
  if (code === undefined) return undefined;
  const body = statusBody(err);
  const reason =
    typeof body?.reason === 'string' && /^[A-Za-z][A-Za-z0-9]*$/.test(body.reason)
      ? body.reason
      : (REASON_OF_CODE[code] ?? `HTTP${code}`);
  const message =
    typeof body?.message === 'string' && body.message !== ''
      ? body.message
      : ((err as { message?: string }).message?.split('\n')[0] ?? `HTTP ${code}`);
  return { code, reason, message };
}
