// The SQLite history with real parts: better-sqlite3, the sqlite3 CLI, the xpole CLI, another
// process writing, a real full (tmpfs) and read-only (bind mount) file system where the machine
// lets the test mount, SQLite's own page limit otherwise.
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { History, HistoryReader, HistorySchemaError, HistoryUnavailableError, MIGRATIONS, SCHEMA_VERSION } from '../src/sinks/history.ts';
import type { Result } from '../src/types.ts';
import { run as runHistory } from '../src/cli/history.ts';
import { UsageError } from '../src/errors.ts';
import { makeResult } from './helpers/results.ts';
import { mountable } from './helpers/mounts.ts';

const here = path.dirname(fileURLToPath(import.meta.url));
const repo = path.resolve(here, '..');
const hasSqlite3 = fs.existsSync('/usr/bin/sqlite3');
let tmp: string;

beforeAll(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'xpole-history-test-'));
});
afterAll(() => {
  fs.rmSync(tmp, { recursive: true, force: true });
});

let n = 0;
function dbFile(): string {
  return path.join(tmp, `case${++n}`, 'history.db');
}

function sqlite3(file: string, sql: string): string {
  return execFileSync('sqlite3', ['-readonly', file, sql], { encoding: 'utf8' }).trim();
}

function xpole(args: string[]): { status: number; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [path.join(repo, 'bin/xpole.js'), 'history', ...args], { encoding: 'utf8', cwd: tmp });
  return { status: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

/** The connection inside History, for SQLite's own limits (max_page_count). */
function connectionOf(h: History): Database.Database {
  return (h as unknown as { db: Database.Database }).db;
}

function count(file: string, table = 'results'): number {
  const db = new Database(file, { readonly: true });
  try {
    return (db.prepare(`SELECT count(*) AS n FROM ${table}`).get() as { n: number }).n;
  } finally {
    db.close();
  }
}

describe('history', () => {
  it('creates the file 0600 in WAL mode at the current schema', () => {
    const file = dbFile();
    const h = History.open(file);
    h.record(makeResult(1));
    expect(fs.statSync(file).mode & 0o777).toBe(0o600);
    expect(fs.statSync(file + '-wal').mode & 0o777).toBe(0o600);
    expect(h.schemaVersion).toBe(SCHEMA_VERSION);
    expect(connectionOf(h).pragma('journal_mode', { simple: true })).toBe('wal');
    expect(connectionOf(h).pragma('auto_vacuum', { simple: true })).toBe(2); // incremental
    h.close();
    // A world-readable file (copied by hand, say) is closed down again on open.
    fs.chmodSync(file, 0o644);
    History.open(file).close();
    expect(fs.statSync(file).mode & 0o777).toBe(0o600);
  });

  it('records the history row and the outbox row in one transaction, once per id', () => {
    const file = dbFile();
    const h = History.open(file);
    const r = makeResult(4);
    expect(h.record(r)).toBe(true);
    const reader = new Database(file, { readonly: true });
    const row = reader.prepare('SELECT * FROM results WHERE id = ?').get(r.id) as Record<string, unknown>;
    reader.close();
    expect(row).toMatchObject({
      id: 'st1-4', seq: 4, ts: r.ts, frame: r.frame, cellId: 'CELL-4', verdict: 'FAIL',
      reasons: '["OVERHANG_LOW"]', overhangMm: JSON.stringify(r.overhangMm), roi: '[350,80,120,400]',
      modelName: 'xpole-hrnet', modelSha256: 'ab'.repeat(32), modelProvider: 'cpu', error: null,
    });
    expect(JSON.parse(row.poles as string)).toEqual(r.poles);
    expect(JSON.parse(row.result as string)).toEqual(r);
    expect(h.outbox.peek(10)).toEqual([{ id: r.id, seq: 4, payload: JSON.stringify(r) }]);
    // A retry of a stored id (its commit did succeed) stores and queues nothing twice.
    expect(h.record(r)).toBe(false);
    expect(h.outbox.depth()).toBe(1);
    // An ERROR result is a row like any other.
    h.record(makeResult(5));
    expect(h.findByFrame(makeResult(5).frame)).toEqual(makeResult(5));

    // The outbox insert failing (a stray row with the same id) must take the history row with it.
    const other = new Database(file);
    other.prepare("INSERT INTO outbox (id, seq, payload) VALUES ('st1-6', 6, '{}')").run();
    other.close();
    expect(() => h.record(makeResult(6))).toThrow(/UNIQUE/);
    expect(count(file)).toBe(2);
    expect(h.lastSeq()).toBe(5);
    h.outbox.ack('st1-6');
    expect(h.record(makeResult(6))).toBe(true);
    expect(h.outbox.peek(10).map((o) => o.seq)).toEqual([4, 5, 6]);
    expect(h.outbox.ack('st1-4')).toBe(true);
    expect(h.outbox.ack('st1-4')).toBe(false);
    expect(count(file)).toBe(3);
    h.close();
  });

  it('migrates an older database after a backup next to it; refuses a newer or a foreign file', () => {
    const file = dbFile();
    fs.mkdirSync(path.dirname(file), { recursive: true });
    // A database as the first release left it: schema 1, two rows.
    const old = new Database(file);
    old.pragma('journal_mode = WAL');
    History.migrate(old, file, 1);
    const insert = old.prepare(
      `INSERT INTO results (id, seq, ts, frame, cellId, verdict, reasons, overhangMm, poles, roi, timingsMs,
         modelName, modelSha256, modelProvider, error, result) VALUES (?, ?, ?, ?, ?, ?, '[]', '[]', '[]', NULL, '{}', 'm', 's', 'cpu', NULL, ?)`,
    );
    for (const r of [makeResult(1), makeResult(2)]) insert.run(r.id, r.seq, r.ts, r.frame, r.cellId, r.verdict, JSON.stringify(r));
    old.close();

    const h = History.open(file);
    expect(h.schemaVersion).toBe(SCHEMA_VERSION);
    expect(SCHEMA_VERSION).toBe(MIGRATIONS.length);
    expect(h.findByFrame(makeResult(2).frame)?.id).toBe('st1-2');
    h.close();
    const reader = new Database(file, { readonly: true });
    const indexes = reader
      .prepare("SELECT name FROM sqlite_master WHERE type = 'index' AND name LIKE 'results_%'")
      .all()
      .map((r) => (r as { name: string }).name);
    reader.close();
    expect(indexes.sort()).toEqual(['results_cell', 'results_frame', 'results_ts', 'results_verdict']);
    const backups = fs.readdirSync(path.dirname(file)).filter((f) => /^history\.db\.v1-.*\.bak$/.test(f));
    expect(backups).toHaveLength(1);
    const bak = path.join(path.dirname(file), backups[0]!);
    expect(fs.statSync(bak).mode & 0o777).toBe(0o600);
    const b = new Database(bak, { readonly: true });
    expect(b.pragma('user_version', { simple: true })).toBe(1);
    expect((b.prepare('SELECT count(*) AS n FROM results').get() as { n: number }).n).toBe(2);
    b.close();
    // Opening again migrates nothing and backs up nothing.
    History.open(file).close();
    expect(fs.readdirSync(path.dirname(file)).filter((f) => f.endsWith('.bak'))).toHaveLength(1);

    const newer = new Database(file);
    newer.pragma(`user_version = ${SCHEMA_VERSION + 1}`);
    newer.close();
    expect(() => History.open(file)).toThrow(HistorySchemaError);
    expect(() => History.open(file)).toThrow(/schema version 3, newer than this xpole's 2/);

    const foreign = dbFile();
    fs.mkdirSync(path.dirname(foreign), { recursive: true });
    const f = new Database(foreign);
    f.exec('CREATE TABLE parts (x)');
    f.close();
    expect(() => History.open(foreign)).toThrow(/not an xpole history database/);
  });

  it('retention by age deletes the oldest judged rows, never one still in the outbox', () => {
    const file = dbFile();
    const h = History.open(file, { synchronous: 'NORMAL' });
    const now = Date.UTC(2026, 10, 24, 12);
    // One row a day for 100 days; the 10 oldest are still waiting for the broker.
    for (let d = 100; d >= 1; d--) h.record(makeResult(101 - d, { ts: new Date(now - d * 86_400_000 + 1000).toISOString() }));
    for (const o of h.outbox.peek(200)) if (o.seq > 10) h.outbox.ack(o.id);
    const report = h.enforceRetention(now, { maxAgeDays: 30 });
    expect(report.deletedByAge).toBe(60); // days 100..31 minus the 10 in the outbox
    expect(h.stats(now).rows).toBe(40);
    const kept = [...h.export()].map((r) => r.seq);
    expect(kept).toEqual([...Array.from({ length: 10 }, (_, i) => i + 1), ...Array.from({ length: 30 }, (_, i) => i + 71)]);
    expect(h.outbox.depth()).toBe(10);
    h.close();
  });

  it('retention by size keeps the newest rows and shrinks the file under the limit', () => {
    const file = dbFile();
    const h = History.open(file, { synchronous: 'NORMAL' });
    for (let i = 1; i <= 3000; i++) h.record(makeResult(i));
    for (const o of h.outbox.peek(5000)) if (o.seq > 5) h.outbox.ack(o.id);
    h.close();
    const before = fs.statSync(file).size;
    expect(before).toBeGreaterThan(4 * 1024 * 1024);

    const h2 = History.open(file, { synchronous: 'NORMAL', retention: { maxSizeMb: 2 } });
    const report = h2.enforceRetention();
    expect(report.deletedBySize).toBeGreaterThan(1000);
    expect(report.fileBytes).toBeLessThanOrEqual(2 * 1024 * 1024);
    expect(fs.statSync(file).size).toBe(report.fileBytes);
    const seqs = [...h2.export()].map((r) => r.seq);
    // The 5 rows waiting for the broker stay; then the newest contiguous run up to 3000.
    expect(seqs.slice(0, 5)).toEqual([1, 2, 3, 4, 5]);
    const rest = seqs.slice(5);
    expect(rest.at(-1)).toBe(3000);
    expect(rest.length).toBe(3000 - rest[0]! + 1);
    expect(seqs.length).toBe(3000 - report.deletedBySize);
    h2.close();
  });

  it('xpole history export (jsonl, csv, time range), stats, and usage errors', async () => {
    const file = dbFile();
    const h = History.open(file, { synchronous: 'NORMAL' });
    const all: Result[] = [];
    for (let i = 1; i <= 30; i++) {
      all.push(makeResult(i));
      h.record(all.at(-1)!);
    }
    const weird = { ...makeResult(31), frame: 'odd, "quoted"\nname.tif', cellId: '=HYPERLINK("x")' };
    h.record(weird);
    h.close();

    const jsonl = xpole(['export', '--db', file]);
    expect(jsonl.status).toBe(0);
    expect(jsonl.stdout.trim().split('\n').map((l) => JSON.parse(l))).toEqual([...all, weird]);

    // Results 11..20: ts is 08:00:00Z plus seq seconds.
    const ranged = xpole(['export', '--db', file, '--since', '2026-11-24T08:00:11Z', '--until', '2026-11-24T08:00:21Z']);
    expect(ranged.stdout.trim().split('\n').map((l) => JSON.parse(l).seq)).toEqual([11, 12, 13, 14, 15, 16, 17, 18, 19, 20]);

    const csv = xpole(['export', '--db', file, '--format', 'csv', '--since', '2026-11-24T08:00:29Z']);
    expect(csv.status).toBe(0);
    const lines = csv.stdout.split('\r\n');
    expect(lines[0]).toBe('id,seq,ts,frame,cellId,verdict,reasons,overhangMm,poles,roi,timingsMs,modelName,modelSha256,modelProvider,error');
    expect(lines[1]).toMatch(/^st1-29,29,2026-11-24T08:00:29.000Z,frame-000029.tif,,ERROR,"\[""DECODE_ERROR""\]",\[\],\[\],,/);
    expect(lines[1]).toMatch(/,"not a PNG, TIFF, JPEG or BMP file"$/);
    // Quotes doubled, the newline kept inside quotes, a formula defused.
    expect(csv.stdout).toContain(`st1-31,31,2026-11-24T08:00:31.000Z,"odd, ""quoted""\nname.tif","'=HYPERLINK(""x"")",FAIL`);

    const stats = xpole(['stats', '--db', file]);
    expect(stats.status).toBe(0);
    expect(JSON.parse(stats.stdout)).toMatchObject({
      schemaVersion: SCHEMA_VERSION,
      rows: 31,
      verdicts: { PASS: 10, FAIL: 11, ERROR: 10 },
      lastSeq: 31,
      outboxDepth: 31,
      outboxOldestSeq: 1,
    });

    // The daemon's config names the file (what a maintenance engineer has at hand).
    const config = path.join(path.dirname(file), 'xpole.yaml');
    fs.writeFileSync(config, `history:\n  path: ${JSON.stringify(file)}\n`);
    const byConfig = xpole(['stats', '--config', config]);
    expect(byConfig.status).toBe(0);
    expect(JSON.parse(byConfig.stdout)).toMatchObject({ file, rows: 31 });
    await expect(runHistory(['stats', '--config', config, '--db', file])).rejects.toThrow(/--db or --config, not both/);

    const bad = xpole(['export', '--db', file, '--since', 'yesterday']);
    expect(bad.status).toBe(2);
    expect(bad.stderr).toMatch(/--since must be/);
    await expect(runHistory(['export', '--db', file, '--format', 'xml'])).rejects.toThrow(/--format must be csv or jsonl/);
    const missing = xpole(['stats', '--db', path.join(tmp, 'nope.db')]);
    expect(missing.status).toBe(2);
    expect(missing.stderr).toMatch(/--db: .*nope\.db does not exist/);
    await expect(runHistory(['export', '--db', file, '--bogus'])).rejects.toThrow(UsageError);
    await expect(runHistory(['vacuum'])).rejects.toThrow(/expected export, stats or backup, got 'vacuum'/);
    await expect(runHistory(['backup', '--db', file])).rejects.toThrow(/backup needs exactly one FILE/);
    await expect(runHistory(['export', '--db', file, '--since', '2h', '--until', '3h'])).rejects.toThrow(/--since .* must be before --until/);
  });

  it.skipIf(!hasSqlite3)('backup and the sqlite3 CLI read consistent data while another process writes', async () => {
    const file = dbFile();
    const pre = History.open(file, { synchronous: 'NORMAL' });
    for (let i = 1; i <= 4000; i++) pre.record(makeResult(i));
    for (const o of pre.outbox.peek(5000)) pre.outbox.ack(o.id);
    pre.close();

    const writer = spawn(
      process.execPath,
      ['--import', 'tsx', path.join(here, 'helpers/history-writer-child.ts'), JSON.stringify({ db: file, from: 4001, count: 400 })],
      { cwd: repo, stdio: ['ignore', 'pipe', 'inherit'] },
    );
    let out = '';
    writer.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    const exited = new Promise<number | null>((r) => writer.once('exit', r));
    while (!out.includes('writing')) await new Promise((r) => setTimeout(r, 10));

    // Maintenance with the sqlite3 CLI: never locked out, counts only grow.
    const counts: number[] = [];
    for (let i = 0; i < 5; i++) {
      const [mode, rows] = sqlite3(file, 'PRAGMA journal_mode; SELECT count(*) FROM results;').split('\n');
      expect(mode).toBe('wal');
      counts.push(Number(rows));
      await new Promise((r) => setTimeout(r, 50));
    }
    const backupFile = path.join(tmp, `backup-${n}.db`);
    const backup = await new Promise<{ status: number | null; stdout: string; stderr: string }>((resolve) => {
      const c = spawn(process.execPath, [path.join(repo, 'bin/xpole.js'), 'history', 'backup', backupFile, '--db', file], { cwd: repo });
      let stdout = '';
      let stderr = '';
      c.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
      c.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
      c.once('exit', (status) => resolve({ status, stdout, stderr }));
    });
    const stillWriting = !out.includes('done');
    expect(await exited).toBe(0);
    expect(backup.stderr).toBe('');
    expect(backup.status).toBe(0);
    expect(backup.stdout).toMatch(/check ok/);
    for (let i = 1; i < counts.length; i++) expect(counts[i]).toBeGreaterThanOrEqual(counts[i - 1]!);
    expect(counts[0]).toBeGreaterThanOrEqual(4001);

    // The backup is one snapshot: seq 1..k without a gap, its outbox rows all have history rows.
    const b = new Database(backupFile, { readonly: true });
    const k = b.prepare('SELECT count(*) AS n, max(seq) AS m FROM results').get() as { n: number; m: number };
    expect(k.n).toBe(k.m);
    expect(k.n).toBeGreaterThanOrEqual(4001);
    expect(k.n).toBeLessThanOrEqual(4400);
    const orphans = b.prepare('SELECT count(*) AS n FROM outbox WHERE id NOT IN (SELECT id FROM results)').get() as { n: number };
    expect(orphans.n).toBe(0);
    expect(b.pragma('integrity_check', { simple: true })).toBe('ok');
    b.close();
    expect(fs.statSync(backupFile).mode & 0o777).toBe(0o600);
    expect(sqlite3(file, 'PRAGMA integrity_check; SELECT count(*) FROM results;')).toBe('ok\n4400');
    // The writer acknowledged every other row: the outbox holds the odd seqs it wrote.
    expect(count(file, 'outbox')).toBe(200);
    if (!stillWriting) console.warn('history test: the writer finished before the backup ran; the backup was not concurrent');
  });

  it('a full database raises HistoryUnavailableError, writes nothing half, and recovers (SQLite page limit)', () => {
    const file = dbFile();
    const h = History.open(file);
    h.record(makeResult(1));
    const db = connectionOf(h);
    db.pragma('wal_checkpoint(TRUNCATE)');
    db.pragma(`max_page_count = ${db.pragma('page_count', { simple: true }) as number}`);
    let err: unknown;
    // Results with a large payload until the file cannot grow.
    for (let i = 2; i < 50 && !err; i++) {
      try {
        h.record({ ...makeResult(i), error: 'x'.repeat(8000) });
      } catch (e) {
        err = e;
      }
    }
    expect(err).toBeInstanceOf(HistoryUnavailableError);
    expect((err as HistoryUnavailableError).code).toBe('SQLITE_FULL');
    expect(h.degraded).toBe(true);
    const rows = count(file);
    expect(count(file, 'outbox')).toBe(rows); // every history row has its outbox row, no more, no less
    // The next attempt reopens the connection (no page limit now): the result goes in whole.
    const retry = { ...makeResult(rows + 1), error: 'x'.repeat(8000) };
    expect(h.record(retry)).toBe(true);
    expect(h.degraded).toBe(false);
    expect(h.outbox.peek(100).at(-1)?.id).toBe(retry.id);
    h.close();
  });
});

describe('history on a connection that became read-only', () => {
  it('raises HistoryUnavailableError (SQLITE_READONLY), writes nothing, and recovers by reopening', () => {
    const file = dbFile();
    const h = History.open(file);
    h.record(makeResult(1));
    // A file system cannot be remounted read-only under an open writer (EBUSY), so SQLite's
    // query_only stands in for it: the same error code through the same path.
    connectionOf(h).pragma('query_only = ON');
    const err = (() => {
      try {
        h.record(makeResult(2));
      } catch (e) {
        return e;
      }
    })();
    expect(err).toBeInstanceOf(HistoryUnavailableError);
    expect((err as HistoryUnavailableError).code).toMatch(/^SQLITE_READONLY/);
    expect(count(file)).toBe(1);
    expect(count(file, 'outbox')).toBe(1);
    expect(h.record(makeResult(2))).toBe(true);
    expect(count(file, 'outbox')).toBe(2);
    h.close();
  });
});

// A real full and read-only file system where mounts are allowed; elsewhere the page-limit test
// above covers the full case.

describe.skipIf(!mountable)('history on a real full or read-only file system (tmpfs, bind mount)', () => {
  let mnt: string;
  beforeAll(() => {
    mnt = fs.mkdtempSync(path.join(os.tmpdir(), 'xpole-mnt-'));
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=2m,mode=0700', 'tmpfs', mnt]);
  });
  afterAll(() => {
    spawnSync('umount', [mnt]);
    fs.rmSync(mnt, { recursive: true, force: true });
  });

  it('a full disk: HistoryUnavailableError, nothing half-written, recording resumes when space returns', () => {
    const file = path.join(mnt, 'full', 'history.db');
    const h = History.open(file);
    for (let i = 1; i <= 10; i++) h.record(makeResult(i));
    // Fill the file system to the last byte.
    const filler = path.join(mnt, 'filler');
    const fd = fs.openSync(filler, 'w');
    for (const size of [64 * 1024, 512]) {
      try {
        for (;;) fs.writeSync(fd, Buffer.alloc(size));
      } catch (e) {
        expect((e as NodeJS.ErrnoException).code).toBe('ENOSPC');
      }
    }
    fs.closeSync(fd);
    let failure: HistoryUnavailableError | undefined;
    let seq = 11;
    // The WAL may have room for a few more rows; then it cannot grow.
    for (; seq < 500; seq++) {
      try {
        h.record({ ...makeResult(seq), error: 'y'.repeat(4000) });
      } catch (e) {
        if (!(e instanceof HistoryUnavailableError)) throw e;
        failure = e;
        break;
      }
    }
    expect(failure?.code).toMatch(/^SQLITE_(FULL|IOERR)/);
    expect(h.degraded).toBe(true);
    // A retry while still full fails the same way.
    expect(() => h.record({ ...makeResult(seq), error: 'y'.repeat(4000) })).toThrow(HistoryUnavailableError);
    fs.rmSync(filler);
    expect(h.record({ ...makeResult(seq), error: 'y'.repeat(4000) })).toBe(true);
    h.record(makeResult(seq + 1));
    h.close();
    const r = HistoryReader.openReadOnly(file);
    const seqs = [...r.export()].map((x) => x.seq);
    r.close();
    expect(seqs).toEqual(Array.from({ length: seq + 1 }, (_, i) => i + 1));
    expect(count(file, 'outbox')).toBe(seq + 1);
    expect(sqlite3(file, 'PRAGMA integrity_check;')).toBe('ok');
  });

  it('a read-only disk: HistoryUnavailableError until it is writable again, nothing lost', () => {
    const dir = path.join(mnt, 'ro');
    const file = path.join(dir, 'history.db');
    const h = History.open(file);
    for (let i = 1; i <= 5; i++) h.record(makeResult(i));
    h.close();
    // The disk comes back read-only (as ext4 remounts itself after an I/O error) while the daemon starts.
    execFileSync('mount', ['--bind', '-o', 'ro', dir, dir]);
    let h2: History | undefined;
    const attempt = (r: Result) => {
      h2 ??= History.open(file);
      return h2.record(r);
    };
    try {
      expect(() => attempt(makeResult(6))).toThrow(HistoryUnavailableError);
      expect(() => attempt(makeResult(6))).toThrow(/SQLITE_(READONLY|CANTOPEN|IOERR)/);
      // A first start on a read-only disk (no file yet) is the same condition, not a crash.
      expect(() => History.open(path.join(dir, 'new', 'history.db'))).toThrow(HistoryUnavailableError);
      expect(() => History.open(path.join(dir, 'fresh.db'))).toThrow(/EROFS/);
    } finally {
      execFileSync('umount', [dir]);
    }
    expect(attempt(makeResult(6))).toBe(true);
    h2!.close();
    expect(count(file)).toBe(6);
    expect(count(file, 'outbox')).toBe(6);
  });
});
