// The hot folder with real files in a temp directory: claims, half-written files, crash
// leftovers, confinement, cell ids, backpressure, disposal.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { encodePng } from '../src/frame/decode.ts';
import { createLogger } from '../src/log.ts';
import { HotFolder, type HotFolderOptions, globToRegExp, isTempName } from '../src/sources/hotfolder.ts';

let dir: string;
const lines: string[] = [];
const log = createLogger('debug', (l) => lines.push(l));
const open: HotFolder[] = [];

function folder(over: Partial<HotFolderOptions> = {}): HotFolder {
  const hf = new HotFolder(
    {
      dir,
      pattern: '*.{png,tif,tiff,jpg,jpeg,bmp}',
      cellIdRegex: null,
      sidecar: false,
      afterJudged: 'move',
      retentionDays: 0,
      stableMs: 0,
      pollMs: 20,
      maxFileMb: 64,
      ...over,
    },
    log,
  );
  open.push(hf);
  return hf;
}

const ls = (sub = '') => fs.readdirSync(path.join(dir, sub)).filter((n) => !['processing', 'done', 'failed'].includes(n)).sort();

beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'xpole-hf-'));
  lines.length = 0;
});

afterEach(() => {
  for (const hf of open.splice(0)) hf.stop();
  fs.rmSync(dir, { recursive: true, force: true });
});

describe('hot folder', () => {
  it('claims each file exactly once even with two readers racing, and moves it on ack', async () => {
    for (let i = 0; i < 20; i++) fs.writeFileSync(path.join(dir, `f${String(i).padStart(2, '0')}.png`), `frame ${i}`);
    const a = folder();
    const b = folder();
    await a.open();
    await b.open();
    const got: string[] = [];
    const take = async (hf: HotFolder) => {
      for (;;) {
        const f = await hf.next();
        if (!f) return;
        expect('bytes' in f.input).toBe(true);
        got.push(Buffer.from((f.input as { bytes: Uint8Array }).bytes).toString());
        await f.ack(f.frame === 'f03.png' ? 'ERROR' : 'PASS');
        // 20 hand-outs in all: a file handed out twice shows as a repeat below.
        if (got.length >= 20) {
          a.stop();
          b.stop();
        }
      }
    };
    await Promise.all([take(a), take(b)]);
    expect(got.sort()).toEqual(Array.from({ length: 20 }, (_, i) => `frame ${i}`).sort());
    expect(ls()).toEqual([]);
    expect(ls('processing')).toEqual([]);
    expect(ls('failed')).toEqual(['f03.png']);
    expect(ls('done')).toHaveLength(19);
  });

  it('reads each frame into a reused buffer once the daemon releases the last one, and the bytes are the file\'s', async () => {
    const sizes = [300_000, 120_000, 900_000, 50_000];
    const files = sizes.map((n, i) => Buffer.from(Array.from({ length: n }, (_, j) => (j * 7 + i * 13) & 255)));
    files.forEach((b, i) => fs.writeFileSync(path.join(dir, `g${i}.tif`), b));
    const hf = folder();
    await hf.open();
    const buffers = new Set<ArrayBufferLike>();
    for (let i = 0; i < files.length; i++) {
      const f = (await hf.next())!;
      const { bytes } = f.input as { bytes: Uint8Array };
      expect(Buffer.compare(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength), files[Number(f.frame[1])]!)).toBe(0);
      buffers.add(bytes.buffer);
      f.release?.();
      await f.ack('PASS');
    }
    // One buffer served every frame (all fit in its first allocation, rounded up to 1 MiB).
    expect(buffers.size).toBe(1);
    expect(ls('done')).toHaveLength(4);
  });

  it('reads a file that grew after its size was taken whole', async () => {
    const file = path.join(dir, 'grown.tif');
    const content = Buffer.from(Array.from({ length: 5000 }, (_, j) => j & 255));
    fs.writeFileSync(file, content);
    const handle = await fs.promises.open(file, 'r');
    try {
      const readAll = (folder() as unknown as { readAll(h: fs.promises.FileHandle, size: number): Promise<Uint8Array> }).readAll;
      const hf = open[open.length - 1]!;
      const bytes = await readAll.call(hf, handle, 3000);
      expect(Buffer.compare(Buffer.from(bytes), content)).toBe(0);
    } finally {
      await handle.close();
    }
  });

  it('never reads a file while it is being written, nor temp names before their rename', async () => {
    // A wide margin over the 100 ms between chunks: timers run late on a loaded machine.
    const hf = folder({ stableMs: 1000 });
    await hf.open();
    const file = path.join(dir, 'growing.png');
    const fd = fs.openSync(file, 'w');
    const pending = hf.next();
    let done = false;
    void pending.then(() => (done = true));
    // Writes a chunk every 100 ms for 1 s: shorter pauses than stableMs.
    for (let i = 0; i < 10; i++) {
      fs.writeSync(fd, Buffer.alloc(1000, i));
      await new Promise((r) => setTimeout(r, 100));
      expect(done).toBe(false);
    }
    fs.closeSync(fd);
    const f = (await pending)!;
    expect((f.input as { bytes: Uint8Array }).bytes.length).toBe(10_000);

    // The write-then-rename convention: the temp name is ignored however long it sits there.
    fs.writeFileSync(path.join(dir, 'next.png.tmp'), 'x');
    fs.writeFileSync(path.join(dir, '.next.png'), 'x');
    const waiting = hf.next(); // one next() at a time: the same call gets the file once renamed
    const none = Symbol('none');
    expect(await Promise.race([waiting, new Promise((r) => setTimeout(() => r(none), 1500))])).toBe(none);
    fs.renameSync(path.join(dir, 'next.png.tmp'), path.join(dir, 'next.png'));
    const g = await Promise.race([waiting, new Promise<null>((r) => setTimeout(() => r(null), 4000))]);
    expect(g?.frame).toBe('next.png');
    // The dot-file is never taken.
    expect(ls()).toEqual(['.next.png']);
  });

  it('takes a whole PNG at once however long stableMs is; a PNG still missing its end waits', async () => {
    const hf = folder({ stableMs: 20_000 });
    await hf.open();
    const png = await encodePng({ width: 300, height: 300, depth: 16, pixels: new Uint16Array(300 * 300).map((_, i) => (i * 37) % 65536) });
    const file = path.join(dir, 'inplace.png');
    // Written in place, not renamed: all but the IEND chunk first.
    fs.writeFileSync(file, png.subarray(0, png.length - 12));
    const pending = hf.next();
    const none = Symbol('none');
    expect(await Promise.race([pending, new Promise((r) => setTimeout(() => r(none), 800))])).toBe(none);
    fs.appendFileSync(file, png.subarray(png.length - 12));
    const t0 = Date.now();
    const f = await Promise.race([pending, new Promise<null>((r) => setTimeout(() => r(null), 5000))]);
    expect(f?.frame).toBe('inplace.png');
    expect(Date.now() - t0).toBeLessThan(5000);
    expect(Buffer.from((f!.input as { bytes: Uint8Array }).bytes).equals(png)).toBe(true);
  });

  it('hands out frames left in processing/ by a crash first, marked recovered', async () => {
    const first = folder();
    await first.open();
    fs.writeFileSync(path.join(dir, 'a.png'), 'A');
    const a = (await first.next())!;
    expect(a.recovered).toBe(false);
    first.stop(); // "crash": never acknowledged
    expect(fs.readdirSync(path.join(dir, 'processing'))).toEqual(['a.png']);
    fs.writeFileSync(path.join(dir, 'b.png'), 'B');

    const second = folder();
    await second.open();
    const again = (await second.next())!;
    expect(again.frame).toBe('a.png');
    expect(again.recovered).toBe(true);
    expect(again.writtenAt).toBeGreaterThan(0);
    expect(Buffer.from((again.input as { bytes: Uint8Array }).bytes).toString()).toBe('A');
    const b = (await second.next())!;
    expect([b.frame, b.recovered]).toEqual(['b.png', false]);
    expect(lines.some((l) => l.startsWith('<4>') && l.includes('left in processing/'))).toBe(true);
  });

  it('refuses symlinks (never reads their target) and other non-regular files as ERROR frames', async () => {
    const secret = path.join(os.tmpdir(), `xpole-secret-${process.pid}.png`);
    fs.writeFileSync(secret, 'SECRET');
    try {
      fs.symlinkSync(secret, path.join(dir, 'link.png'));
      fs.mkdirSync(path.join(dir, 'sub.png'));
      const hf = folder();
      await hf.open();
      const frames = [(await hf.next())!, (await hf.next())!];
      for (const f of frames) {
        expect('error' in f.input).toBe(true);
        const err = (f.input as { error: { reason: string; message: string } }).error;
        expect(err.reason).toBe('BAD_FRAME');
        expect(err.message).toMatch(/symbolic link|directory/);
        await f.ack('ERROR');
      }
      expect(ls('failed')).toEqual(['link.png', 'sub.png']);
      expect(fs.lstatSync(path.join(dir, 'failed', 'link.png')).isSymbolicLink()).toBe(true);
      expect(fs.readFileSync(secret, 'utf8')).toBe('SECRET');
      expect(hf.counters().refused).toBe(2);
    } finally {
      fs.rmSync(secret, { force: true });
    }
  });

  it('refuses a file above maxFileMb without reading it', async () => {
    fs.writeFileSync(path.join(dir, 'huge.png'), Buffer.alloc(3 * 1024 * 1024));
    const hf = folder({ maxFileMb: 1 });
    await hf.open();
    const f = (await hf.next())!;
    expect((f.input as { error: { reason: string } }).error.reason).toBe('FRAME_TOO_LARGE');
  });

  it('takes the cell id from the name (named group or group 1) or from a sidecar JSON', async () => {
    fs.writeFileSync(path.join(dir, 'CELL-0042_top.png'), 'x');
    const named = folder({ cellIdRegex: '^(?<cellId>CELL-\\d+)_' });
    await named.open();
    const c = (await named.next())!;
    expect(c.cellId).toBe('CELL-0042');
    await c.ack('PASS');
    named.stop();

    fs.writeFileSync(path.join(dir, 'K77_x.png'), 'x');
    fs.writeFileSync(path.join(dir, 'nomatch.png'), 'x');
    const grouped = folder({ cellIdRegex: '^(K\\d+)_' });
    await grouped.open();
    const two = [(await grouped.next())!, (await grouped.next())!];
    expect(two.map((f) => [f.frame, f.cellId]).sort()).toEqual([['K77_x.png', 'K77'], ['nomatch.png', null]]);
    for (const f of two) await f.ack('PASS');
    grouped.stop();

    fs.writeFileSync(path.join(dir, 'shot1.json'), JSON.stringify({ cellId: 'SIDE-9' }));
    fs.writeFileSync(path.join(dir, 'shot1.png'), 'x');
    fs.writeFileSync(path.join(dir, 'shot2.json'), '{not json');
    fs.writeFileSync(path.join(dir, 'shot2.png'), 'x');
    const side = folder({ sidecar: true, afterJudged: 'delete' });
    await side.open();
    const s = [(await side.next())!, (await side.next())!].sort((p, q) => p.frame.localeCompare(q.frame));
    expect(s.map((f) => f.cellId)).toEqual(['SIDE-9', null]);
    expect(lines.some((l) => l.includes('shot2.json') && l.startsWith('<4>'))).toBe(true);
    for (const f of s) await f.ack('PASS');
    // Deleted with their sidecars, nothing left behind.
    expect(fs.readdirSync(path.join(dir, 'processing'))).toEqual([]);
    expect(ls()).toEqual([]);
    expect(ls('done')).toEqual(['CELL-0042_top.png', 'K77_x.png', 'nomatch.png']);
  });

  it('claims nothing while nobody asks: frames wait in the folder (backpressure)', async () => {
    for (let i = 0; i < 10; i++) fs.writeFileSync(path.join(dir, `f${i}.png`), 'x');
    const hf = folder();
    await hf.open();
    await hf.next();
    await hf.next();
    await new Promise((r) => setTimeout(r, 200));
    expect(fs.readdirSync(path.join(dir, 'processing'))).toHaveLength(2);
    expect(ls()).toHaveLength(8);
  });

  it('keeps both files when a name repeats, and applies retention to done/ and failed/', async () => {
    fs.mkdirSync(path.join(dir, 'done'));
    fs.writeFileSync(path.join(dir, 'done', 'same.png'), 'old');
    const old = path.join(dir, 'done', 'ancient.png');
    fs.writeFileSync(old, 'x');
    const t = (Date.now() - 40 * 86_400_000) / 1000;
    fs.utimesSync(old, t, t);
    fs.writeFileSync(path.join(dir, 'same.png'), 'new');
    const hf = folder({ retentionDays: 30 });
    await hf.open();
    expect(fs.existsSync(old)).toBe(false);
    const f = (await hf.next())!;
    await f.ack('FAIL');
    expect(ls('done')).toEqual(['same.1.png', 'same.png']);
    expect(fs.readFileSync(path.join(dir, 'done', 'same.1.png'), 'utf8')).toBe('new');
  });

  it('reports idle only while waiting with nothing to hand out', async () => {
    const hf = folder();
    await hf.open();
    expect(hf.idle).toBe(false);
    const pending = hf.next();
    // Idle once its first scan found nothing (a loaded machine may take longer than a few ms).
    for (let waited = 0; !hf.idle && waited < 3000; waited += 10) await new Promise((r) => setTimeout(r, 10));
    expect(hf.idle).toBe(true);
    hf.stop();
    expect(await pending).toBeNull();
  });
});

describe('names', () => {
  it('matches globs case-insensitively, whole name only', () => {
    const re = globToRegExp('*.{png,tif}');
    expect(re.test('A.PNG')).toBe(true);
    expect(re.test('a.tif')).toBe(true);
    expect(re.test('a.png.json')).toBe(false);
    expect(re.test('sub/a.png')).toBe(false);
    expect(globToRegExp('cam?_*.bmp').test('cam1_x.bmp')).toBe(true);
  });

  it('treats write-in-progress names as temporary', () => {
    for (const n of ['.a.png', 'a.png.tmp', 'a.png.part', 'a.png~', 'a.PNG.TMP']) expect(isTempName(n)).toBe(true);
    for (const n of ['a.png', 'tmp.png']) expect(isTempName(n)).toBe(false);
  });
});

describe('hot folder backlog', () => {
  it('drains n waiting frames oldest first with one scan, not one per frame', async () => {
    const n = 300;
    const base = Date.now() / 1000 - 3600;
    for (let i = 0; i < n; i++) {
      const f = path.join(dir, `b${String(i).padStart(3, '0')}.png`);
      fs.writeFileSync(f, `frame ${i}`);
      // Written in reverse order of name: the oldest must come first, whatever the name.
      fs.utimesSync(f, base + (n - i), base + (n - i));
    }
    const hf = folder({ stableMs: 500 });
    await hf.open();
    const fsp = (await import('node:fs/promises')).default;
    let lstats = 0;
    const real = fsp.lstat;
    fsp.lstat = ((...a: Parameters<typeof real>) => {
      lstats++;
      return real(...a);
    }) as typeof real;
    const order: string[] = [];
    try {
      for (let i = 0; i < n; i++) {
        const f = await hf.next();
        order.push(f!.frame);
        await f!.ack('PASS');
      }
    } finally {
      fsp.lstat = real;
    }
    expect(order).toEqual(Array.from({ length: n }, (_, i) => `b${String(n - 1 - i).padStart(3, '0')}.png`));
    // One scan lstats the n files; claiming and reading add a few per frame. One scan per
    // frame would be n * (n + 1) / 2 = 45150.
    expect(lstats).toBeLessThan(5 * n);
    expect(hf.counters().pending).toBe(0);
  });
});
