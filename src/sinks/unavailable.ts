// The history database cannot be written right now (disk full, read-only, I/O error, locked too long).
// The daemon reports "degraded", keeps its frames and retries: nothing judged is lost.

/** SQLite result codes that describe the storage, not the data: retrying later can succeed. */
const TRANSIENT = /^SQLITE_(FULL|READONLY|IOERR|CANTOPEN|BUSY|LOCKED|PROTOCOL|NOMEM)/;
/** The same from the file system, when xpole creates the file or its folder itself. */
const TRANSIENT_ERRNO = new Set(['EROFS', 'ENOSPC', 'EDQUOT', 'EIO']);

export class HistoryUnavailableError extends Error {
  override name = 'HistoryUnavailableError';
  constructor(
    /** The SQLite code, e.g. SQLITE_FULL, SQLITE_READONLY_DBMOVED, SQLITE_IOERR_WRITE. */
    readonly code: string,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

function sqliteCode(err: unknown): string | undefined {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : undefined;
}

/** Runs fn; storage failures become HistoryUnavailableError, anything else is rethrown as is. */
export function guardStorage<T>(what: string, fn: () => T): T {
  try {
    return fn();
  } catch (err) {
    throw asUnavailable(what, err) ?? err;
  }
}

export function asUnavailable(what: string, err: unknown): HistoryUnavailableError | undefined {
  if (err instanceof HistoryUnavailableError) return err;
  const code = sqliteCode(err);
  if (code === undefined || !(TRANSIENT.test(code) || TRANSIENT_ERRNO.has(code))) return undefined;
  return new HistoryUnavailableError(code, `history unavailable while ${what}: ${code}: ${(err as Error).message}`, {
    cause: err,
  });
}
