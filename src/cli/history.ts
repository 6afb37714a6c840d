// `xpole history export|stats|backup`: maintenance access to the history while the daemon runs.
// Opens the database read-only (WAL: the daemon's writes are never blocked).
import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { loadConfig } from '../config/index.ts';
import { UsageError } from '../errors.ts';
import { HistoryReader, HistorySchemaError, HistoryUnavailableError, type TimeRange } from '../sinks/history.ts';
import type { Result } from '../types.ts';
import { parse } from './args.ts';

const USAGE = `usage: xpole history export [--since T] [--until T] [--format csv|jsonl] [--db FILE | --config FILE]
       xpole history stats [--db FILE | --config FILE]
       xpole history backup FILE [--db FILE | --config FILE]
T: an ISO-8601 time (2026-11-24T08:00:00Z), a date (2026-11-24) or an age before now (30m, 24h, 7d)`;

const DB_OPTIONS = {
  db: { type: 'string' },
  config: { type: 'string' },
} as const;

export async function run(argv: string[]): Promise<number> {
  const [sub, ...rest] = argv;
  if (sub === '--help' || sub === '-h') {
    process.stdout.write(USAGE + '\n');
    return 0;
  }
  try {
    switch (sub) {
      case 'export':
        return await exportCommand(rest);
      case 'stats':
        return statsCommand(rest);
      case 'backup':
        return await backupCommand(rest);
      default:
        throw new UsageError(`expected export, stats or backup${sub === undefined ? '' : `, got '${sub}'`}\n${USAGE}`);
    }
  } catch (err) {
    if (err instanceof HistorySchemaError || err instanceof HistoryUnavailableError) {
      process.stderr.write(`xpole history: ${err.message}\n`);
      return 1;
    }
    throw err;
  }
}

/** --db FILE, or the history path of --config FILE, or the embedded default's (./var/history.db). */
function databasePath(values: { db?: string; config?: string }): string {
  if (values.db !== undefined && values.config !== undefined) throw new UsageError('give --db or --config, not both');
  const file = values.db ?? loadConfig(values.config).history.path;
  if (!fs.existsSync(file)) {
    throw new UsageError(`${values.db !== undefined ? '--db' : 'history.path'}: ${file} does not exist`);
  }
  return file;
}

const AGE = /^(\d+(?:\.\d+)?)(s|m|h|d)$/;
const AGE_MS: Record<string, number> = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** An option's time as the ISO-8601 UTC text the history stores. */
export function parseTime(value: string | undefined, flag: string, now = Date.now()): string | undefined {
  if (value === undefined) return undefined;
  const age = AGE.exec(value.trim());
  let ms: number;
  if (age) ms = now - Number(age[1]) * AGE_MS[age[2]!]!;
  else ms = /^\d{4}-\d{2}-\d{2}/.test(value) ? Date.parse(value) : NaN;
  if (!Number.isFinite(ms)) {
    throw new UsageError(
      `--${flag} must be an ISO-8601 time (2026-11-24T08:00:00Z), a date (2026-11-24) or an age (30m, 24h, 7d), got '${value}'`,
    );
  }
  return new Date(ms).toISOString();
}

const CSV_COLUMNS = [
  'id', 'seq', 'ts', 'frame', 'cellId', 'verdict', 'reasons', 'overhangMm', 'poles', 'roi', 'timingsMs',
  'modelName', 'modelSha256', 'modelProvider', 'error',
] as const;

function csvCell(v: unknown): string {
  if (v === null || v === undefined) return '';
  let s = typeof v === 'string' ? v : typeof v === 'number' ? String(v) : JSON.stringify(v);
  // A text starting like a formula would run in a spreadsheet (names come from file names).
  if (typeof v === 'string' && /^[=+\-@\t\r]/.test(s)) s = `'${s}`;
  return /[",\r\n]/.test(s) ? `"${s.replaceAll('"', '""')}"` : s;
}

export function csvRow(r: Result): string {
  const cells: unknown[] = [
    r.id, r.seq, r.ts, r.frame, r.cellId, r.verdict, r.reasons, r.overhangMm, r.poles, r.roi, r.timingsMs,
    r.model.name, r.model.sha256, r.model.provider, r.error,
  ];
  return cells.map(csvCell).join(',') + '\r\n';
}

/** Writes with backpressure; false when the reader went away (`| head`). */
async function write(text: string): Promise<boolean> {
  if (process.stdout.destroyed) return false;
  if (process.stdout.write(text)) return true;
  return new Promise((resolve) => {
    const done = (ok: boolean) => {
      process.stdout.off('drain', onDrain);
      process.stdout.off('error', onError);
      resolve(ok);
    };
    const onDrain = () => done(true);
    const onError = () => done(false);
    process.stdout.once('drain', onDrain);
    process.stdout.once('error', onError);
  });
}

async function exportCommand(argv: string[]): Promise<number> {
  const { values, positionals } = parse(argv, {
    ...DB_OPTIONS,
    since: { type: 'string' },
    until: { type: 'string' },
    format: { type: 'string', default: 'jsonl' },
  });
  if (positionals.length > 0) throw new UsageError(`export takes no file arguments, got '${positionals[0]}'`);
  const format = values.format;
  if (format !== 'csv' && format !== 'jsonl') throw new UsageError(`--format must be csv or jsonl, got '${format}'`);
  const now = Date.now();
  const range: TimeRange = { since: parseTime(values.since, 'since', now), until: parseTime(values.until, 'until', now) };
  if (range.since !== undefined && range.until !== undefined && range.since >= range.until) {
    throw new UsageError(`--since (${range.since}) must be before --until (${range.until})`);
  }
  const history = HistoryReader.openReadOnly(databasePath(values));
  // EPIPE when the reader stops early (`| head`): not a failure of the export.
  process.stdout.on('error', () => {});
  try {
    const progress = process.stderr.isTTY;
    if (format === 'csv') await write(CSV_COLUMNS.join(',') + '\r\n');
    let n = 0;
    for (const r of history.export(range)) {
      if (!(await write(format === 'csv' ? csvRow(r) : JSON.stringify(r) + '\n'))) break;
      if (progress && ++n % 5000 === 0) process.stderr.write(`\rexported ${n} rows`);
    }
    if (progress && n >= 5000) process.stderr.write(`\rexported ${n} rows\n`);
  } finally {
    history.close();
  }
  return 0;
}

function statsCommand(argv: string[]): number {
  const { values, positionals } = parse(argv, DB_OPTIONS);
  if (positionals.length > 0) throw new UsageError(`stats takes no arguments, got '${positionals[0]}'`);
  const history = HistoryReader.openReadOnly(databasePath(values));
  try {
    process.stdout.write(JSON.stringify(history.stats(), null, 2) + '\n');
  } finally {
    history.close();
  }
  return 0;
}

async function backupCommand(argv: string[]): Promise<number> {
  const { values, positionals } = parse(argv, DB_OPTIONS);
  if (positionals.length !== 1) throw new UsageError('backup needs exactly one FILE to write');
  const target = positionals[0]!;
  if (fs.existsSync(target)) throw new UsageError(`FILE ${target} already exists; choose a new name`);
  if (!fs.existsSync(path.dirname(path.resolve(target)))) throw new UsageError(`FILE: directory of ${target} does not exist`);
  const history = HistoryReader.openReadOnly(databasePath(values));
  let pages: number;
  try {
    ({ pages } = await history.backup(target));
  } finally {
    history.close();
  }
  // The copy is checked before it is called a backup.
  const copy = new Database(target, { readonly: true });
  try {
    const check = copy.pragma('quick_check', { simple: true });
    const rows = (copy.prepare('SELECT count(*) AS n FROM results').get() as { n: number }).n;
    if (check !== 'ok') {
      process.stderr.write(`xpole history: backup ${target} failed its check: ${String(check)}\n`);
      return 1;
    }
    process.stdout.write(`backup ${target}: ${rows} rows, ${pages} pages, check ok\n`);
  } finally {
    copy.close();
  }
  return 0;
}
