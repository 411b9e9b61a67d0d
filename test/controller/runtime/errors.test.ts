import { describe, expect, it } from 'vitest';
import { apiRefusal, classifyApiError, type ApiErrorKind } from '../../../controller/runtime/errors.js';

/** An error as client-node 1.4's ApiException gives it: the HTTP status in `code`, the Status object as a string. */
const apiError = (code: number, body?: object | string) =>
  Object.assign(new Error(`HTTP-Code: ${code}\nMessage: Unknown API Status Code!\nBody: ...`), {
    code,
    body: typeof body === 'string' ? body : body && JSON.stringify(body),
  });

describe('classifyApiError', () => {
  const table: Array<{ name: string; err: unknown; missingTarget?: boolean; kind: ApiErrorKind }> = [
    { name: '400 a malformed request', err: apiError(400), kind: 'permanent' },
    { name: '403 forbidden (RBAC, a terminating namespace)', err: apiError(403), kind: 'permanent' },
    { name: '404 of an object the request refers to', err: apiError(404), kind: 'permanent' },
    {
      name: '404 of the object acted on (the cache is behind)',
      err: apiError(404),
      missingTarget: true,
      kind: 'transient',
    },
    { name: '422 invalid', err: apiError(422), kind: 'permanent' },
    { name: '409 conflict', err: apiError(409), kind: 'conflict' },
    { name: '408 request timeout', err: apiError(408), kind: 'transient' },
    { name: '410 gone (a watch too old)', err: apiError(410), kind: 'transient' },
    { name: '429 too many requests', err: apiError(429), kind: 'transient' },
    { name: '500 internal error', err: apiError(500), kind: 'transient' },
    { name: '503 unavailable', err: apiError(503), kind: 'transient' },
    { name: '504 gateway timeout', err: apiError(504), kind: 'transient' },
    { name: 'a watch error (statusCode)', err: { statusCode: 422 }, kind: 'permanent' },
    {
      name: 'a reset connection (no status)',
      err: Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' }),
      kind: 'transient',
    },
    { name: 'not an error object', err: 'boom', kind: 'transient' },
  ];
  it.each(table)('$name → $kind', ({ err, missingTarget, kind }) => {
    expect(classifyApiError(err, { missingTarget })).toBe(kind);
  });
});

describe('apiRefusal', () => {
  it("carries a 422's reason and its field errors, as the API server wrote them", () => {
    const message =
      'Job.batch "songs-scan" is invalid: spec.template.spec.volumes[0].persistentVolumeClaim.claimName: Required value';
    const err = apiError(422, {
      kind: 'Status',
      status: 'Failure',
      reason: 'Invalid',
      message,
      details: { causes: [{ reason: 'FieldValueRequired', field: 'spec.template.spec.volumes[0]' }] },
      code: 422,
    });
    expect(apiRefusal(err)).toEqual({ code: 422, reason: 'Invalid', message });
  });

  it('accepts a body already parsed', () => {
    const err = { code: 403, body: { reason: 'Forbidden', message: 'jobs.batch is forbidden: no' } };
    expect(apiRefusal(err)).toEqual({ code: 403, reason: 'Forbidden', message: 'jobs.batch is forbidden: no' });
  });

  it('names the reason after the HTTP code when the body has none (or one that is not a reason)', () => {
    expect(apiRefusal(apiError(403, 'forbidden by a proxy'))).toEqual({
      code: 403,
      reason: 'Forbidden',
      message: 'HTTP-Code: 403',
    });
    expect(apiRefusal(apiError(400, { reason: 'not a reason!', message: 'bad' }))).toMatchObject({
      reason: 'BadRequest',
      message: 'bad',
    });
    expect(apiRefusal(apiError(418))).toMatchObject({ reason: 'HTTP418' });
  });

  it('has nothing to say about an error without an HTTP status', () => {
    expect(apiRefusal(new Error('socket hang up'))).toBeUndefined();
  });
});
