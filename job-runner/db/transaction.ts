import type pg from 'pg';

/** Runs `fn` inside BEGIN … COMMIT on `client`; rolls back and rethrows when it fails. */
export async function inTransaction<T>(client: pg.ClientBase, fn: () => Promise<T>): Promise<T> {
  await client.query('BEGIN');
  try {
    const result = await fn();
    await client.query('COMMIT');
    return result;
  } catch (err) {
    // The connection may be gone (that may be why fn failed); the caller gets fn's error, not the rollback's.
    await client.query('ROLLBACK').catch(() => {});
    throw err;
  }
}

/**
 * SQLSTATE classes 22 (data exception: bad number, bad encoding) and 23 (integrity: CHECK, NOT NULL, foreign key):
 * the rows were wrong, not the connection.
 */
export function isDataError(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' && (code.startsWith('22') || code.startsWith('23'));
}
