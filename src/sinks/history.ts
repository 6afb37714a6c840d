// The history: one SQLite row per judged frame (ERRORs too), SPEC "History".
// WAL so that maintenance reads (sqlite3 CLI, `xpole history`) never block the daemon's single
// writer; each record() writes its history row and its outbox row in one transaction, so a
// result is either stored and queued for MQTT, or neither.
import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import type { Result, Verdict } from '../types.ts';
import { Outbox } from './outbox.ts';
import { asUnavailable, guardStorage } from './unavailable.ts';

export { HistoryUnavailableError } from './unavailable.ts';

/** Numbered migrations: MIGRATIONS[i] brings user_version i to i + 1. Append only, never edit. */
export const MIGRATIONS: readonly string[] = [
  // 1: the result rows (SPEC's result fields, structured ones as JSON text, plus the whole
  //    message) and the outbox of results waiting for the broker's PUBACK.
  `CREATE TABLE results (
     pos           INTEGER PRIMARY KEY,
     id            TEXT NOT NULL UNIQUE,
     seq           INTEGER NOT NULL,
     ts            TEXT NOT NULL,
     frame         TEXT NOT NULL,
     cellId        TEXT,
     verdict       TEXT NOT NULL CHECK (verdict IN ('PASS', 'FAIL', 'ERROR')),
     reasons       TEXT NOT NULL,
     overhangMm    TEXT NOT NULL,
     poles         TEXT NOT NULL,
     roi           TEXT,
     timingsMs     TEXT NOT NULL,
     modelName     TEXT NOT NULL,
     modelSha256   TEXT NOT NULL,
     modelProvider TEXT NOT NULL,
     error         TEXT,
     result        TEXT NOT NULL
   );
   CREATE INDEX results_ts ON results (ts);
   CREATE INDEX results_verdict ON results (verdict, ts);
   CREATE TABLE outbox (
     pos     INTEGER PRIMARY KEY AUTOINCREMENT,
     id      TEXT NOT NULL UNIQUE,
     seq     INTEGER NOT NULL,
     payload TEXT NOT NULL
   );
   CREATE INDEX outbox_seq ON outbox (seq, pos);`,
  // 2: look-ups by cell (the PLC integrator's question) and by frame file (re-judging after a crash).
  `CREATE INDEX results_cell ON results (cellId) WHERE cellId IS NOT NULL;
   CREATE INDEX results_frame ON results (frame);`,
];
export const SCHEMA_VERSION = MIGRATIONS.length;

/** The file is not an xpole history this version can use (foreign file, newer schema). */
export class HistorySchemaError extends Error {
  override name = 'HistorySchemaError';
}

export interface TimeRange {
  /** Inclusive, ISO-8601 UTC (as stored in ts). */
  since?: string;
  /** Exclusive. */
  until?: string;
}

export interface HistoryStats {
  file: string;
  schemaVersion: number;
  rows: number;
  verdicts: Record<Verdict, number>;
  last24h: Record<Verdict, number>;
  firstTs: string | null;
  lastTs: string | null;
  lastSeq: number | null;
  outboxDepth: number;
  outboxOldestSeq: number | null;
  fileBytes: number;
  walBytes: number;
  /** Bytes in pages that hold data (the file minus its free pages). */
  usedBytes: number;
}

export interface RetentionOptions {
  /** Rows older than this many days are deleted (0 or absent: keep forever). */
  maxAgeDays?: number;
  /** The database file is kept under this many MB by deleting the oldest rows (0 or absent: no limit). */
  maxSizeMb?: number;
}

export interface RetentionReport {
  deletedByAge: number;
  deletedBySize: number;
  fileBytes: number;
}

export interface HistoryOptions {
  /** How long a write waits for a lock held by a reader's checkpoint or a backup (ms). */
  busyTimeoutMs?: number;
  retention?: RetentionOptions;
  /**
   * FULL (default): a recorded result survives a power loss (one fsync per record, ~5 ms on a
   * VM disk). NORMAL: survives a crash of the process, not a power loss (~0.2 ms).
   */
  synchronous?: 'FULL' | 'NORMAL';
}

const FILE_MODE = 0o600;
const DAY_MS = 86_400_000;

function zeroVerdicts(): Record<Verdict, number> {
  return { PASS: 0, FAIL: 0, ERROR: 0 };
}

function fileSize(file: string): number {
  try {
    return fs.statSync(file).size;
  } catch {
    return 0;
  }
}

/** mkdir -p one level at a time: recursive mkdirSync reports ENOENT, not EROFS, on a read-only disk. */
function makeDirs(dir: string): void {
  if (fs.existsSync(dir)) return;
  makeDirs(path.dirname(dir));
  fs.mkdirSync(dir, { mode: 0o750 });
}

/** Read access: export, stats, backup. Opens the file read-only, so it can run beside the daemon. */
export class HistoryReader {
  protected constructor(
    protected db: Database.Database,
    readonly file: string,
  ) {}

  static openReadOnly(file: string, busyTimeoutMs = 5000): HistoryReader {
    if (!fs.existsSync(file)) throw new HistorySchemaError(`history database ${file} does not exist`);
    const db = guardStorage(`opening ${file}`, () => new Database(file, { readonly: true, timeout: busyTimeoutMs }));
    const version = db.pragma('user_version', { simple: true }) as number;
    if (version === 0) {
      db.close();
      throw new HistorySchemaError(`${file} is not an xpole history database (user_version 0)`);
    }
    return new HistoryReader(db, file);
  }

  get schemaVersion(): number {
    return this.db.pragma('user_version', { simple: true }) as number;
  }

  /** The judged results in ts order, parsed from the stored message. */
  *export(range: TimeRange = {}): IterableIterator<Result> {
    const stmt = this.db
      .prepare<[string, string], { result: string }>(
        'SELECT result FROM results WHERE ts >= ? AND ts < ? ORDER BY ts, seq',
      );
    // '~' sorts after every digit, so it is above any ISO timestamp.
    for (const row of stmt.iterate(range.since ?? '', range.until ?? '~')) yield JSON.parse(row.result) as Result;
  }

  /** The latest result recorded for a frame file name, e.g. to skip re-judging after a crash. */
  findByFrame(frame: string): Result | undefined {
    const row = this.db
      .prepare<[string], { result: string }>('SELECT result FROM results WHERE frame = ? ORDER BY pos DESC LIMIT 1')
      .get(frame);
    return row ? (JSON.parse(row.result) as Result) : undefined;
  }

  stats(now = Date.now()): HistoryStats {
    return guardStorage('reading stats', () => {
      const verdicts = zeroVerdicts();
      const last24h = zeroVerdicts();
      const count = this.db.prepare<[], { verdict: Verdict; n: number }>(
        'SELECT verdict, count(*) AS n FROM results GROUP BY verdict',
      );
      for (const r of count.all()) verdicts[r.verdict] = r.n;
      const recent = this.db.prepare<[string], { verdict: Verdict; n: number }>(
        'SELECT verdict, count(*) AS n FROM results WHERE ts >= ? GROUP BY verdict',
      );
      for (const r of recent.all(new Date(now - DAY_MS).toISOString())) last24h[r.verdict] = r.n;
      const span = this.db
        .prepare<[], { firstTs: string | null; lastTs: string | null; lastSeq: number | null }>(
          'SELECT min(ts) AS firstTs, max(ts) AS lastTs, max(seq) AS lastSeq FROM results',
        )
        .get()!;
      const outbox = this.db
        .prepare<[], { n: number; oldest: number | null }>('SELECT count(*) AS n, min(seq) AS oldest FROM outbox')
        .get()!;
      const pageSize = this.db.pragma('page_size', { simple: true }) as number;
      const pages = this.db.pragma('page_count', { simple: true }) as number;
      const free = this.db.pragma('freelist_count', { simple: true }) as number;
      return {
        file: this.file,
        schemaVersion: this.schemaVersion,
        rows: verdicts.PASS + verdicts.FAIL + verdicts.ERROR,
        verdicts,
        last24h,
        ...span,
        outboxDepth: outbox.n,
        outboxOldestSeq: outbox.oldest,
        fileBytes: fileSize(this.file),
        walBytes: fileSize(this.file + '-wal'),
        usedBytes: (pages - free) * pageSize,
      };
    });
  }

  /**
   * A consistent copy of the database into a new file, using SQLite's online backup while the
   * daemon keeps writing from another process. All pages go in one step: one read transaction,
   * one snapshot (a step-wise copy restarts every time the writer commits, and may never end).
   */
  async backup(target: string): Promise<{ pages: number }> {
    const fd = fs.openSync(target, 'wx', FILE_MODE);
    fs.closeSync(fd);
    try {
      const meta = await this.db.backup(target, { progress: () => 0x7fffffff });
      return { pages: meta.totalPages };
    } catch (err) {
      fs.rmSync(target, { force: true });
      throw asUnavailable(`backing up to ${target}`, err) ?? err;
    }
  }

  close(): void {
    if (this.db.open) this.db.close();
  }
}

/** The daemon's single writer: records results with their outbox rows, migrates, keeps retention. */
export class History extends HistoryReader {
  readonly outbox: Outbox;
  private insertStmt!: Database.Statement<unknown[]>;
  private recordTxn!: (result: Result, payload: string) => boolean;
  /** Set after a storage failure: the next call reopens the connection before it retries. */
  private failed = false;

  private constructor(
    db: Database.Database,
    file: string,
    private readonly options: HistoryOptions,
  ) {
    super(db, file);
    this.outbox = new Outbox(db);
    this.prepare();
  }

  /**
   * Opens (creating it 0600 when missing) and migrates the history. An existing database at an
   * older schema is first copied to `FILE.v{N}-{time}.bak` next to it.
   */
  static open(file: string, options: HistoryOptions = {}): History {
    return guardStorage(`opening ${file}`, () => {
      makeDirs(path.dirname(path.resolve(file)));
      if (!fs.existsSync(file)) fs.closeSync(fs.openSync(file, 'wx', FILE_MODE));
      else if ((fs.statSync(file).mode & 0o077) !== 0) fs.chmodSync(file, FILE_MODE);
      const db = History.connect(file, options);
      try {
        History.migrate(db, file);
      } catch (err) {
        db.close();
        throw err;
      }
      return new History(db, file, options);
    });
  }

  private static connect(file: string, options: HistoryOptions): Database.Database {
    const db = new Database(file, { timeout: options.busyTimeoutMs ?? 5000 });
    try {
      const empty = (db.pragma('page_count', { simple: true }) as number) === 0;
      // Must precede the first table; lets retention give freed pages back to the file system.
      if (empty) db.pragma('auto_vacuum = INCREMENTAL');
      db.pragma('journal_mode = WAL');
      // A commit is on disk before the hot folder lets the frame go (power loss too).
      db.pragma(`synchronous = ${options.synchronous === 'NORMAL' ? 'NORMAL' : 'FULL'}`);
      db.pragma(`busy_timeout = ${options.busyTimeoutMs ?? 5000}`);
      return db;
    } catch (err) {
      db.close();
      throw err;
    }
  }

  /** Brings the schema to SCHEMA_VERSION, one transaction per step. Exported for tests via upTo. */
  static migrate(db: Database.Database, file: string, upTo = SCHEMA_VERSION): void {
    const version = db.pragma('user_version', { simple: true }) as number;
    if (version > SCHEMA_VERSION) {
      throw new HistorySchemaError(
        `${file} has schema version ${version}, newer than this xpole's ${SCHEMA_VERSION}: upgrade xpole or point history at another file`,
      );
    }
    if (version === 0) {
      const tables = db.prepare("SELECT count(*) AS n FROM sqlite_master WHERE type = 'table'").get() as { n: number };
      if (tables.n > 0) throw new HistorySchemaError(`${file} is not an xpole history database (it has tables but user_version 0)`);
    } else if (version < upTo) {
      const stamp = new Date().toISOString().replace(/[:.]/g, '-');
      const backup = `${file}.v${version}-${stamp}.bak`;
      db.prepare('VACUUM INTO ?').run(backup);
      fs.chmodSync(backup, FILE_MODE);
    }
    for (let v = version; v < upTo; v++) {
      db.transaction(() => {
        db.exec(MIGRATIONS[v]!);
        db.pragma(`user_version = ${v + 1}`);
      })();
    }
  }

  private prepare(): void {
    this.insertStmt = this.db.prepare(
      `INSERT OR IGNORE INTO results (id, seq, ts, frame, cellId, verdict, reasons, overhangMm, poles, roi,
         timingsMs, modelName, modelSha256, modelProvider, error, result)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    );
    this.recordTxn = this.db.transaction((r: Result, payload: string): boolean => {
      const inserted =
        this.insertStmt.run(
          r.id,
          r.seq,
          // Normalized so that ts ranges compare as text; the message keeps its own ts.
          new Date(r.ts).toISOString(),
          r.frame,
          r.cellId,
          r.verdict,
          JSON.stringify(r.reasons),
          JSON.stringify(r.overhangMm),
          JSON.stringify(r.poles),
          r.roi === null ? null : JSON.stringify(r.roi),
          JSON.stringify(r.timingsMs),
          r.model.name,
          r.model.sha256,
          r.model.provider,
          r.error ?? null,
          payload,
        ).changes > 0;
      // A retry of an id already stored (its commit did succeed) must not queue it twice.
      if (inserted) this.outbox.enqueue(r.id, r.seq, payload);
      return inserted;
    });
  }

  /**
   * Stores the result and queues it for MQTT, atomically. Returns false when this id was
   * already recorded. Throws HistoryUnavailableError when storage fails (nothing is written;
   * retry later), a plain Error for an invalid result.
   */
  record(result: Result): boolean {
    if (Number.isNaN(Date.parse(result.ts))) throw new TypeError(`result ${result.id}: ts '${result.ts}' is not a date`);
    return this.write(`recording result ${result.id}`, () => this.recordTxn(result, JSON.stringify(result)));
  }

  /** The highest seq stored, so a restarted daemon continues the sequence (0 when empty). */
  lastSeq(): number {
    return this.write('reading the last seq', () => {
      const row = this.db.prepare<[], { s: number | null }>('SELECT max(seq) AS s FROM results').get()!;
      return row.s ?? 0;
    });
  }

  /**
   * Deletes the oldest rows beyond the configured age and size, never a row still in the outbox,
   * then returns the freed pages to the file system. Run it on a timer (e.g. hourly), not per frame.
   */
  enforceRetention(now = Date.now(), retention = this.options.retention ?? {}): RetentionReport {
    return this.write('enforcing retention', () => {
      const deleteOldest = this.db.prepare<[string, number]>(
        `DELETE FROM results WHERE pos IN (
           SELECT pos FROM results
           WHERE ts < ? AND NOT EXISTS (SELECT 1 FROM outbox o WHERE o.id = results.id)
           ORDER BY ts LIMIT ?)`,
      );
      let deletedByAge = 0;
      if (retention.maxAgeDays && retention.maxAgeDays > 0) {
        const cutoff = new Date(now - retention.maxAgeDays * DAY_MS).toISOString();
        // In batches, so a reader or the PUBACK bookkeeping never waits long for the lock.
        for (let n = -1; n !== 0; deletedByAge += n) n = deleteOldest.run(cutoff, 5000).changes;
      }
      let deletedBySize = 0;
      if (retention.maxSizeMb && retention.maxSizeMb > 0) {
        const limit = retention.maxSizeMb * 1024 * 1024;
        const rowsStmt = this.db.prepare<[], { n: number }>('SELECT count(*) AS n FROM results');
        for (;;) {
          const used = this.usedBytes();
          const rows = rowsStmt.get()!.n;
          if (used <= limit || rows === 0) break;
          // Estimate the rows to drop from the mean row size, a little more to converge fast.
          const n = Math.max(50, Math.ceil(((used - limit) / (used / rows)) * 1.05));
          const deleted = deleteOldest.run('~', n).changes;
          if (deleted === 0) break; // everything left is still in the outbox
          deletedBySize += deleted;
          this.db.pragma('incremental_vacuum');
        }
      }
      if (deletedByAge + deletedBySize > 0) {
        this.db.pragma('incremental_vacuum');
        // Moves the shrunk pages into the main file and truncates the WAL.
        this.db.pragma('wal_checkpoint(TRUNCATE)');
      }
      return { deletedByAge, deletedBySize, fileBytes: fileSize(this.file) };
    });
  }

  private usedBytes(): number {
    const pageSize = this.db.pragma('page_size', { simple: true }) as number;
    const pages = this.db.pragma('page_count', { simple: true }) as number;
    const free = this.db.pragma('freelist_count', { simple: true }) as number;
    return (pages - free) * pageSize;
  }

  /** Runs a storage operation; after a failure the connection is reopened first (a remounted disk). */
  private write<T>(what: string, fn: () => T): T {
    if (this.failed) this.reopen(what);
    try {
      return fn();
    } catch (err) {
      const unavailable = asUnavailable(what, err);
      if (!unavailable) throw err;
      this.failed = true;
      throw unavailable;
    }
  }

  private reopen(what: string): void {
    try {
      if (this.db.open) this.db.close();
    } catch {
      // The old connection is unusable anyway; a fresh one is what matters.
    }
    try {
      this.db = History.connect(this.file, this.options);
      // Preparing reads the schema: on a disk that is still failing this fails too.
      this.outbox.attach(this.db);
      this.prepare();
    } catch (err) {
      throw asUnavailable(what, err) ?? err;
    }
    this.failed = false;
  }

  /** True after a storage failure until a write succeeds again: the daemon reports "degraded". */
  get degraded(): boolean {
    return this.failed;
  }

  override close(): void {
    if (!this.db.open) return;
    try {
      // Leaves a single file behind for copying; harmless when another process still reads.
      this.db.pragma('wal_checkpoint(TRUNCATE)');
    } catch {
      // A full or read-only disk: the WAL stays and is replayed on the next open.
    }
    this.db.close();
  }
}
