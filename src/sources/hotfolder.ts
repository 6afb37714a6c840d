// The hot folder: the detector's software writes frame files into a directory. Each file is
// claimed by renaming it into processing/ (atomic within one file system, so no file is judged
// twice), judged, then moved to done/ (or deleted) or, for ERRORs, to failed/. Files left in
// processing/ by a crash are handed out again first at start.
//
// A file still being written is never read: temp names (dot-files, *.tmp, *.part, *~) are
// ignored, which supports the write-then-rename convention, and any other file is taken only
// once its size and mtime have stood still for `stableMs`, or at once when it is a PNG whose last
// 12 bytes are the IEND chunk (written last, so the file is whole). Names never leave the folder: only
// plain names from readdir are used, symlinks and other non-regular files are refused (as an
// ERROR result) and frames are opened with O_NOFOLLOW.
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import { FrameError, UsageError } from '../errors.ts';
import { PNG_END } from '../frame/png-format.ts';
import type { Logger } from '../log.ts';
import type { Verdict } from '../types.ts';
import { FrameBufferPool } from '../frame/frame-buffers.ts';
import { Nap } from './nap.ts';
import type { FrameInput, Source, SourceFrame } from './source.ts';

export interface HotFolderOptions {
  dir: string;
  pattern: string;
  cellIdRegex: string | null;
  sidecar: boolean;
  afterJudged: 'move' | 'delete';
  retentionDays: number;
  stableMs: number;
  pollMs: number;
  maxFileMb: number;
}

export const SUBDIRS = ['processing', 'done', 'failed'] as const;

/** A file ready to be claimed: settled, or to be refused as an ERROR frame. */
interface Candidate {
  name: string;
  /** performance.now() when the scan that found it ready saw it: latency counts from here. */
  arrivedAt: number;
  refusal?: FrameError;
}

/** A file that grows for this long without settling is taken and refused: it would block the folder. */
const GROWING_LIMIT_MS = 60_000;
const SIDECAR_MAX_BYTES = 64 * 1024;
/** How long the rest of one scan's ready files are handed out before the folder is scanned again:
 *  a scan lstats every waiting file (~25 µs each here: 120 ms for 5000). */
const READY_MAX_AGE_MS = 2_000;
const RETENTION_EVERY_MS = 3_600_000;

interface Seen {
  size: number;
  mtimeMs: number;
  /** When this size and mtime were first observed. */
  since: number;
  /** When the file was first observed at all. */
  first: number;
  /** Whether this size ends in a PNG's IEND chunk (checked once per size and mtime). */
  complete?: boolean;
}

/** True when the file's last 12 bytes are a PNG's IEND chunk (false on any read problem). */
async function endsLikePng(file: string, size: number): Promise<boolean> {
  if (size < 8 + PNG_END.length) return false;
  let fh: fsp.FileHandle | null = null;
  try {
    fh = await fsp.open(file, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW);
    const tail = Buffer.alloc(PNG_END.length);
    const { bytesRead } = await fh.read(tail, 0, tail.length, size - tail.length);
    return bytesRead === tail.length && tail.equals(PNG_END);
  } catch {
    return false;
  } finally {
    await fh?.close();
  }
}

export class HotFolder implements Source {
  readonly kind = 'hotfolder';
  readonly dir: string;
  private readonly match: RegExp;
  private readonly cellId: RegExp | null;
  private readonly seen = new Map<string, Seen>();
  private readonly buffers = new FrameBufferPool();
  /** Names in processing/ to hand out before anything new (crash leftovers). */
  private leftovers: string[] = [];
  /** The rest of the last scan's files that were ready, oldest first: handed out before the next
   *  scan, so a backlog of n frames costs one scan, not one per frame (n lstat calls each). */
  private ready: Candidate[] = [];
  private readyAt = 0;
  private stopped = false;
  private readonly nap = new Nap();
  private watcher: fs.FSWatcher | null = null;
  private retentionTimer: NodeJS.Timeout | null = null;
  private readonly warnedNames = new Set<string>();
  private readonly count = { claimed: 0, recovered: 0, done: 0, deleted: 0, failed: 0, refused: 0 };

  constructor(
    private readonly opts: HotFolderOptions,
    private readonly log: Logger,
  ) {
    this.dir = path.resolve(opts.dir);
    this.match = globToRegExp(opts.pattern);
    this.cellId = opts.cellIdRegex === null ? null : new RegExp(opts.cellIdRegex);
  }

  get idle(): boolean {
    return this.nap.napping && this.leftovers.length === 0;
  }

  async open(): Promise<void> {
    try {
      await fsp.mkdir(this.dir, { recursive: true });
      for (const sub of SUBDIRS) await fsp.mkdir(path.join(this.dir, sub), { recursive: true });
      await fsp.access(this.dir, fs.constants.R_OK | fs.constants.W_OK);
    } catch (err) {
      throw new UsageError(`source.hotfolder.dir: cannot use ${this.dir}: ${(err as Error).message}`);
    }
    const processing = path.join(this.dir, 'processing');
    this.leftovers = (await fsp.readdir(processing)).filter((n) => !this.isSidecarName(n)).sort();
    if (this.leftovers.length > 0) {
      this.log.warning(`hotfolder: ${this.leftovers.length} frame(s) left in processing/ by an earlier run are judged again`);
    }
    try {
      // A wake-up only: the scan below decides. Some file systems (NFS) send nothing; polling covers them.
      this.watcher = fs.watch(this.dir, { persistent: false }, () => this.nap.wake());
      this.watcher.on('error', () => undefined);
    } catch {
      this.watcher = null;
    }
    await this.applyRetention();
    this.retentionTimer = setInterval(() => void this.applyRetention(), RETENTION_EVERY_MS);
    this.retentionTimer.unref();
  }

  stop(): void {
    this.stopped = true;
    this.watcher?.close();
    this.watcher = null;
    if (this.retentionTimer) clearInterval(this.retentionTimer);
    this.nap.wake();
  }

  counters(): Record<string, number> {
    return { ...this.count, pending: this.seen.size + this.ready.length };
  }

  async next(): Promise<SourceFrame | null> {
    while (!this.stopped) {
      const leftover = this.leftovers.shift();
      if (leftover !== undefined) {
        this.count.recovered++;
        return this.load(leftover, leftover, true, performance.now());
      }
      // A batch older than READY_MAX_AGE_MS is scanned again: files may have changed since.
      if (performance.now() - this.readyAt > READY_MAX_AGE_MS) this.ready = [];
      const picked = this.ready.shift() ?? (await this.scan());
      if (picked) {
        const claimed = await this.claim(picked.name);
        if (claimed !== null) return this.load(claimed, picked.name, false, picked.arrivedAt, picked.refusal);
        continue;
      }
      await this.nap.sleep(this.nextCheckIn());
    }
    return null;
  }

  /** The oldest ready file (settled, or to be refused), or null; the other ready ones go to
   *  `ready`, oldest first. Forgets files that vanished. */
  private async scan(): Promise<Candidate | null> {
    let entries: string[];
    try {
      entries = await fsp.readdir(this.dir);
    } catch (err) {
      this.log.err(`hotfolder: cannot list ${this.dir}: ${(err as Error).message}`);
      return null;
    }
    const now = Date.now();
    const present = new Set<string>();
    const found: (Candidate & { mtimeMs: number })[] = [];
    for (const name of entries) {
      if ((SUBDIRS as readonly string[]).includes(name) || isTempName(name) || this.isSidecarName(name)) continue;
      if (!this.match.test(name)) {
        if (!this.warnedNames.has(name)) {
          this.warnedNames.add(name);
          this.log.warning(`hotfolder: ignoring ${JSON.stringify(name)}: it does not match source.hotfolder.pattern ${JSON.stringify(this.opts.pattern)}`);
        }
        continue;
      }
      let st: fs.Stats;
      try {
        st = await fsp.lstat(path.join(this.dir, name));
      } catch {
        continue; // gone between readdir and lstat (renamed by its writer)
      }
      present.add(name);
      const arrivedAt = performance.now();
      let refusal: FrameError | undefined;
      if (!st.isFile()) {
        refusal = new FrameError('BAD_FRAME', `${describe(st)} in the hot folder: only regular files are frames (links are not followed)`);
      } else if (st.size > this.opts.maxFileMb * 1024 * 1024) {
        refusal = new FrameError('FRAME_TOO_LARGE', `the file has ${st.size} bytes, more than source.hotfolder.maxFileMb (${this.opts.maxFileMb} MB)`);
      }
      let s = this.seen.get(name);
      if (!s || s.size !== st.size || s.mtimeMs !== st.mtimeMs) {
        s = { size: st.size, mtimeMs: st.mtimeMs, since: now, first: s?.first ?? now };
        this.seen.set(name, s);
      }
      let settled = now - s.since >= this.opts.stableMs || now - st.mtimeMs >= this.opts.stableMs;
      if (!settled && !refusal) {
        // A whole PNG need not wait for the settle time: that wait is most of the latency at 2048².
        s.complete ??= await endsLikePng(path.join(this.dir, name), st.size);
        settled = s.complete;
      }
      if (!refusal && !settled) {
        if (now - s.first < GROWING_LIMIT_MS) continue;
        refusal = new FrameError('BAD_FRAME', `the file kept changing for ${Math.round((now - s.first) / 1000)} s: refused rather than read half-written`);
      }
      found.push({ name, mtimeMs: st.mtimeMs, arrivedAt, refusal });
    }
    for (const name of this.seen.keys()) if (!present.has(name)) this.seen.delete(name);
    found.sort((a, b) => a.mtimeMs - b.mtimeMs || (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    for (const f of found) this.seen.delete(f.name);
    this.ready = found.slice(1);
    this.readyAt = performance.now();
    return found[0] ?? null;
  }

  /** Renames the file into processing/; its name there, or null if someone else moved it first. */
  private async claim(name: string): Promise<string | null> {
    const target = await freeName(path.join(this.dir, 'processing'), name);
    try {
      await fsp.rename(path.join(this.dir, name), path.join(this.dir, 'processing', target));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
      throw err;
    }
    if (this.opts.sidecar) {
      const side = sidecarName(name);
      const st = await fsp.lstat(path.join(this.dir, side)).catch(() => null);
      if (st?.isFile()) {
        await fsp.rename(path.join(this.dir, side), path.join(this.dir, 'processing', sidecarName(target))).catch(() => undefined);
      }
    }
    this.count.claimed++;
    return target;
  }

  private async load(name: string, original: string, recovered: boolean, arrivedAt: number, refusal?: FrameError): Promise<SourceFrame> {
    const file = path.join(this.dir, 'processing', name);
    let input: FrameInput;
    if (refusal) {
      this.count.refused++;
      input = { error: refusal };
    } else {
      input = await this.read(file);
      if ('error' in input) this.count.refused++;
    }
    const st = await fsp.lstat(file).catch(() => null);
    return {
      frame: name,
      cellId: await this.cellIdOf(original, name),
      input,
      arrivedAt,
      recovered,
      writtenAt: st?.mtimeMs,
      ack: (verdict) => this.finish(name, verdict),
      release: () => {
        if ('bytes' in input) this.buffers.give(input.bytes);
      },
    };
  }

  private async read(file: string): Promise<FrameInput> {
    let handle: fsp.FileHandle;
    try {
      // O_NOFOLLOW: a file swapped for a symlink after the scan is still not followed.
      handle = await fsp.open(file, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      const why = code === 'ELOOP' ? 'a symbolic link: links are not followed' : `cannot be opened (${code ?? (err as Error).message})`;
      return { error: new FrameError('BAD_FRAME', `the file ${why}`) };
    }
    try {
      const st = await handle.stat();
      if (!st.isFile()) return { error: new FrameError('BAD_FRAME', `${describe(st)}: only regular files are frames`) };
      if (st.size > this.opts.maxFileMb * 1024 * 1024) {
        return { error: new FrameError('FRAME_TOO_LARGE', `the file has ${st.size} bytes, more than source.hotfolder.maxFileMb (${this.opts.maxFileMb} MB)`) };
      }
      return { bytes: await this.readAll(handle, st.size) };
    } catch (err) {
      return { error: new FrameError('DECODE_ERROR', `the file cannot be read: ${(err as Error).message}`) };
    } finally {
      await handle.close();
    }
  }

  /** The whole file in a pooled buffer: one read where the size holds, readFile where it grew. */
  private async readAll(handle: fsp.FileHandle, size: number): Promise<Uint8Array> {
    const bytes = this.buffers.take(size + 1);
    let got = 0;
    for (;;) {
      const { bytesRead } = await handle.read(bytes, got, bytes.length - got, got);
      if (bytesRead === 0) break;
      got += bytesRead;
      if (got === bytes.length) {
        // Longer than its stat: still being written after all (the settle check passed). Read what is there.
        this.buffers.give(bytes);
        return new Uint8Array(await handle.readFile());
      }
    }
    return bytes.subarray(0, got);
  }

  /** From the sidecar when configured and present, else from the name, else null. */
  private async cellIdOf(original: string, name: string): Promise<string | null> {
    if (this.opts.sidecar) {
      const file = path.join(this.dir, 'processing', sidecarName(name));
      try {
        const handle = await fsp.open(file, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW);
        try {
          const st = await handle.stat();
          if (!st.isFile() || st.size > SIDECAR_MAX_BYTES) throw new Error(`not a regular file of at most ${SIDECAR_MAX_BYTES} bytes`);
          const doc = JSON.parse(await handle.readFile('utf8')) as unknown;
          const id = (doc as { cellId?: unknown } | null)?.cellId;
          if (typeof id === 'string' && id.length > 0) return id;
          throw new Error('no string field "cellId"');
        } finally {
          await handle.close();
        }
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ENOENT') {
          this.log.warning(`hotfolder: sidecar ${JSON.stringify(sidecarName(name))} ignored: ${(err as Error).message}`);
        }
      }
    }
    if (this.cellId) {
      const m = this.cellId.exec(original);
      if (m) return m.groups?.cellId ?? m[1] ?? m[0];
    }
    return null;
  }

  private async finish(name: string, verdict: Verdict): Promise<void> {
    const from = path.join(this.dir, 'processing');
    const files = [name];
    if (this.opts.sidecar && fs.existsSync(path.join(from, sidecarName(name)))) files.push(sidecarName(name));
    try {
      if (verdict !== 'ERROR' && this.opts.afterJudged === 'delete') {
        for (const f of files) await fsp.unlink(path.join(from, f));
        this.count.deleted++;
        return;
      }
      const sub = verdict === 'ERROR' ? 'failed' : 'done';
      const target = await freeName(path.join(this.dir, sub), name);
      await fsp.rename(path.join(from, name), path.join(this.dir, sub, target));
      if (files.length > 1) await fsp.rename(path.join(from, files[1]!), path.join(this.dir, sub, sidecarName(target)));
      this.count[sub === 'done' ? 'done' : 'failed']++;
    } catch (err) {
      // The result is recorded; a file that cannot be moved is re-judged at the next start and
      // then recognised as already recorded.
      this.log.err(`hotfolder: cannot move ${JSON.stringify(name)} out of processing/: ${(err as Error).message}`);
    }
  }

  private isSidecarName(name: string): boolean {
    return this.opts.sidecar && name.toLowerCase().endsWith('.json');
  }

  /** How long to wait before the next scan: sooner when a file is settling. */
  private nextCheckIn(): number {
    if (this.seen.size === 0) return this.opts.pollMs;
    return Math.max(5, Math.min(this.opts.pollMs, Math.ceil(this.opts.stableMs / 2)));
  }

  private async applyRetention(): Promise<void> {
    if (!(this.opts.retentionDays > 0)) return;
    const limit = Date.now() - this.opts.retentionDays * 86_400_000;
    let removed = 0;
    for (const sub of ['done', 'failed']) {
      const dir = path.join(this.dir, sub);
      for (const name of await fsp.readdir(dir).catch(() => [] as string[])) {
        const st = await fsp.lstat(path.join(dir, name)).catch(() => null);
        if (st && !st.isDirectory() && st.mtimeMs < limit) {
          await fsp.unlink(path.join(dir, name)).catch(() => undefined);
          removed++;
        }
      }
    }
    if (removed > 0) this.log.info(`hotfolder: retention removed ${removed} file(s) older than ${this.opts.retentionDays} days`);
  }
}

/** Names a writer uses while a file is incomplete (write, then rename to the final name). */
export function isTempName(name: string): boolean {
  return name.startsWith('.') || /\.(tmp|part|partial|crdownload)$/i.test(name) || name.endsWith('~');
}

/** `*`, `?` and `{a,b}` globs, whole name, case-insensitive. */
export function globToRegExp(glob: string): RegExp {
  let re = '';
  for (let i = 0; i < glob.length; i++) {
    const c = glob[i]!;
    if (c === '*') re += '[^/]*';
    else if (c === '?') re += '[^/]';
    else if (c === '{') {
      const end = glob.indexOf('}', i);
      if (end < 0) throw new UsageError(`source.hotfolder.pattern: unclosed '{' in ${JSON.stringify(glob)}`);
      re += '(?:' + glob.slice(i + 1, end).split(',').map(escapeRe).join('|') + ')';
      i = end;
    } else re += escapeRe(c);
  }
  return new RegExp(`^${re}$`, 'i');
}

function escapeRe(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
}

function sidecarName(name: string): string {
  const ext = path.extname(name);
  return (ext ? name.slice(0, -ext.length) : name) + '.json';
}

/** `name`, or `stem.N.ext` when `name` is taken in `dir`. */
async function freeName(dir: string, name: string): Promise<string> {
  const ext = path.extname(name);
  const stem = ext ? name.slice(0, -ext.length) : name;
  let candidate = name;
  for (let n = 1; fs.existsSync(path.join(dir, candidate)); n++) {
    candidate = `${stem}.${n}${ext}`;
  }
  return candidate;
}

function describe(st: fs.Stats): string {
  if (st.isSymbolicLink()) return 'a symbolic link';
  if (st.isDirectory()) return 'a directory';
  if (st.isFIFO()) return 'a named pipe';
  if (st.isSocket()) return 'a socket';
  return 'a device or special file';
}
