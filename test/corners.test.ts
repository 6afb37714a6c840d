// The corner detector's own contract: 16-bit path, ranking, threads, async, bad input, CLI.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { decodeFrame, encodePng } from '../src/frame/decode.ts';
import { ADDON_FILE, native } from '../src/native.ts';
import type { Corners, Image } from '../src/types.ts';
import { defaultThreshold, detectCorners, detectCornersAsync } from '../src/vision/corners.ts';
import { rng } from './peers/opencv.ts';

const here = path.dirname(fileURLToPath(import.meta.url));
const ROOT = path.resolve(here, '..');
const REAL = path.resolve(ROOT, '../shared/real-frames/images');
const tmp = mkdtempSync(path.join(os.tmpdir(), 'xpole-corners-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

/** Bright rectangles on a textured, noisy background: hundreds of corners with varied scores. */
function scene(width: number, height: number, seed: number): Image & { pixels: Uint8Array } {
  const r = rng(seed);
  const rects = Array.from({ length: Math.ceil((width * height) / 900) }, () => [r() * width, r() * height, 4 + r() * 25, 3 + r() * 15, 30 + r() * 120]);
  const pixels = new Uint8Array(width * height);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      let v = 50 + ((x + 2 * y) % 40) + r() * 8;
      for (const [rx, ry, w, h, a] of rects) if (x >= rx! && x < rx! + w! && y >= ry! && y < ry! + h!) v += a!;
      pixels[y * width + x] = Math.min(255, v);
    }
  }
  return { width, height, depth: 8, pixels };
}

function times256(img: Image): Image {
  return { width: img.width, height: img.height, depth: 16, pixels: Uint16Array.from(img.pixels, (v) => v * 256) };
}

function arrays(c: Corners) {
  return [c.count, c.x, c.y, c.score, c.harris, c.angle];
}

describe('16-bit path', () => {
  it('finds on values*256 with threshold 256*t exactly the corners of the 8-bit frame', async () => {
    const imgs: Image[] = [scene(300, 200, 1), scene(64, 300, 2)];
    if (existsSync(REAL)) imgs.push(await decodeFrame(readFileSync(path.join(REAL, readdirSync(REAL).sort()[3]!))));
    for (const img of imgs) {
      const wide = times256(img);
      let total = 0;
      for (const t of [1, 7, 20, 55]) {
        const a = detectCorners(img, { threshold: t });
        const b = detectCorners(wide, { threshold: 256 * t });
        total += a.count;
        expect(Array.from(b.x)).toEqual(Array.from(a.x));
        expect(Array.from(b.y)).toEqual(Array.from(a.y));
        // score = largest threshold still a corner, minus one: 256*(s+1) - 1 in 16-bit units.
        expect(Array.from(b.score)).toEqual(Array.from(a.score, (s) => 256 * s + 255));
        // The 8-bit response is computed in float as ORB does: allow its rounding, relative to the largest term.
        const slack = 1e-6 * Math.max(...Array.from(a.harris, Math.abs));
        for (let i = 0; i < a.count; i++) {
          // Harris scales with the value range to the 4th power (255 vs 65535 normalization), angle not at all.
          const want = a.harris[i]! * (256 / 257) ** 4;
          expect(Math.abs(b.harris[i]! - want)).toBeLessThanOrEqual(Math.abs(want) * 1e-5 + slack);
          expect(Math.abs(b.angle[i]! - a.angle[i]!)).toBeLessThan(1e-3);
        }
      }
      expect(total).toBeGreaterThan(100);
    }
  });

  it('uses the full 16-bit range (contrast below one 8-bit step still counts)', () => {
    const img: Image = { width: 32, height: 32, depth: 16, pixels: new Uint16Array(32 * 32).fill(30000) };
    for (let y = 14; y < 32; y++) for (let x = 14; x < 32; x++) img.pixels[y * 32 + x] = 30000 + 100 + ((x * 7 + y) % 5);
    expect(detectCorners(img, { threshold: 50 }).count).toBeGreaterThan(0);
    expect(detectCorners(img, { threshold: 120 }).count).toBe(0);
  });
});

describe('ranking, threads and async', () => {
  const img = scene(400, 300, 3);

  it('keeps the N best by Harris, ranked, a subset of all corners', () => {
    const all = detectCorners(img, { threshold: 10 });
    const keys = new Set(Array.from({ length: all.count }, (_, i) => `${all.x[i]},${all.y[i]}`));
    const best = detectCorners(img, { threshold: 10, maxCorners: 50 });
    expect(all.count).toBeGreaterThan(500);
    expect(best.count).toBeGreaterThanOrEqual(50);
    for (let i = 0; i < best.count; i++) {
      expect(keys.has(`${best.x[i]},${best.y[i]}`)).toBe(true);
      if (i > 0) expect(best.harris[i - 1]!).toBeGreaterThanOrEqual(best.harris[i]!);
    }
    // With N above the count, every corner comes back.
    expect(detectCorners(img, { threshold: 10, maxCorners: all.count + 5 }).count).toBe(all.count);
  });

  it('a corner\'s score is the highest threshold it passes: a detection at 25 = the one at 10 with score >= 25', () => {
    // The pipeline detects once at the lower of its two thresholds and hands the refinement the
    // corners with the score to pass the higher one.
    const key = (c: Corners, i: number) => `${c.x[i]},${c.y[i]}`;
    const low = detectCorners(img, { threshold: 10 });
    const high = detectCorners(img, { threshold: 25 });
    const passing = Array.from({ length: low.count }, (_, i) => i).filter((i) => low.score[i]! >= 25).map((i) => key(low, i));
    expect(high.count).toBeGreaterThan(50);
    expect(high.count).toBeLessThan(low.count);
    expect(new Set(passing)).toEqual(new Set(Array.from({ length: high.count }, (_, i) => key(high, i))));
  });

  it('ranks by FAST score when Harris is not computed (the addon\'s describe=false, used by the bench)', () => {
    const byScore = native.detect(img.pixels, img.width, img.height, img.width, 8, 10, 40, 0, 1, false);
    const sorted = Array.from(detectCorners(img, { threshold: 10 }).score).sort((a, b) => b - a);
    const boundary = sorted[39]!;
    expect(byScore.count).toBe(sorted.filter((v) => v >= boundary).length);
    expect(Array.from(byScore.score)).toEqual(sorted.slice(0, byScore.count));
    expect(Array.from(byScore.harris).every((v) => v === 0)).toBe(true);
  });

  it('keeps every corner tied with the N-th, as ORB retainBest', () => {
    // Identical squares on a flat field: all their corners tie in FAST score and Harris response.
    const w = 120, h = 120;
    const pixels = new Uint8Array(w * h).fill(40);
    for (let by = 20; by < 100; by += 30) for (let bx = 20; bx < 100; bx += 30) {
      for (let y = by; y < by + 9; y++) for (let x = bx; x < bx + 9; x++) pixels[y * w + x] = 200;
      pixels[by * w + bx] = 230; // one brighter pixel breaks the 3x3 tie so each square yields a corner
    }
    const sq: Image = { width: w, height: h, depth: 8, pixels };
    const all = detectCorners(sq, { threshold: 20 });
    expect(all.count).toBe(9);
    expect(new Set(all.harris).size).toBe(1);
    expect(detectCorners(sq, { threshold: 20, maxCorners: 2 }).count).toBe(9);
  });

  it('gives the same corners with any number of row bands', () => {
    const one = detectCorners(img, { threshold: 8 });
    for (const threads of [2, 3, 4]) expect(arrays(detectCorners(img, { threshold: 8, threads }))).toEqual(arrays(one));
  });

  it('computes Harris and angle near the frame edge (reflected border) without reading outside', () => {
    const c = detectCorners(scene(40, 24, 5), { threshold: 5 });
    expect(c.count).toBeGreaterThan(0);
    let nearEdge = 0;
    for (let i = 0; i < c.count; i++) {
      expect(Number.isFinite(c.harris[i]!)).toBe(true);
      expect(c.angle[i]!).toBeGreaterThanOrEqual(0);
      expect(c.angle[i]!).toBeLessThan(360);
      if (c.y[i]! < 16) nearEdge++;
    }
    expect(nearEdge).toBeGreaterThan(0);
  });

  it('runs off the event loop with the same result, also when the caller reuses the buffer at once (a copy by default)', async () => {
    const copy: Image = { ...img, pixels: img.pixels.slice() };
    const pending = detectCornersAsync(copy, { threshold: 10, maxCorners: 100 });
    copy.pixels.fill(0); // the addon works on its own copy
    expect(arrays(await pending)).toEqual(arrays(detectCorners(img, { threshold: 10, maxCorners: 100 })));
    expect(arrays(await detectCornersAsync(img, { threshold: 10, maxCorners: 100 }, { inPlace: true }))).toEqual(arrays(detectCorners(img, { threshold: 10, maxCorners: 100 })));
    const many = await Promise.all([1, 2, 3, 4].map((t) => detectCornersAsync(img, { threshold: t * 10 })));
    many.forEach((c, i) => expect(c.count).toBe(detectCorners(img, { threshold: (i + 1) * 10 }).count));
  });

  it('in place, keeps the pixels alive when the caller drops them during the detection', () => {
    // Without the addon's reference, the collected frame's memory would be reused by the garbage
    // allocated below while the pool still reads it.
    const file = path.join(tmp, 'held.bin');
    writeFileSync(file, scene(600, 400, 5).pixels);
    const script = `const m = require(${JSON.stringify(ADDON_FILE)}); const px = require('fs').readFileSync(${JSON.stringify(file)});
      const want = m.detect(new Uint8Array(px), 600, 400, 600, 8, 10, 0, 0, 1, true).count;
      const runs = [];
      for (let i = 0; i < 8; i++) runs.push(m.detectAsync(new Uint8Array(px), 600, 400, 600, 8, 10, 0, 0, 1, true, true));
      for (let i = 0; i < 8; i++) { globalThis.gc(); new Uint8Array(600 * 400).fill(255); }
      Promise.all(runs).then((r) => console.log(JSON.stringify({ want, got: r.map((c) => c.count) })));`;
    const r = spawnSync(process.execPath, ['--expose-gc', '-e', script], { encoding: 'utf8' });
    expect(r.status, r.stderr).toBe(0);
    const { want, got } = JSON.parse(r.stdout) as { want: number; got: number[] };
    expect(want).toBeGreaterThan(100);
    expect(got).toEqual(Array(8).fill(want));
  });

  it('gives the same corners with every SIMD copy (XPOLE_SIMD=sse2, generic as on ARM)', () => {
    const file = path.join(tmp, 'simd.bin');
    const probe = scene(203, 77, 12);
    writeFileSync(file, probe.pixels);
    const script = `const m = require(${JSON.stringify(ADDON_FILE)}); const px = require('fs').readFileSync(${JSON.stringify(file)});
      const p8 = new Uint8Array(px), p16 = Uint16Array.from(p8, (v) => v * 256), out = [];
      for (const t of [3, 12, 40]) for (const [p, d, s] of [[p8, 8, 1], [p16, 16, 256]]) { const c = m.detect(p, 203, 77, 203, d, t * s, 0, 0, 1, true); out.push([...c.x, ...c.y, ...c.score]); }
      console.log(JSON.stringify(out));`;
    const want: number[][] = [];
    for (const t of [3, 12, 40]) {
      for (const [im, s] of [[probe, 1], [times256(probe), 256]] as const) {
        const c = detectCorners(im, { threshold: t * s });
        want.push([...c.x, ...c.y, ...c.score]);
      }
    }
    expect(want.flat().length).toBeGreaterThan(300);
    for (const simd of ['sse2', 'generic']) {
      const r = spawnSync(process.execPath, ['-e', script], { encoding: 'utf8', env: { ...process.env, XPOLE_SIMD: simd } });
      expect(r.status, r.stderr).toBe(0);
      expect(JSON.parse(r.stdout), simd).toEqual(want);
    }
  });

  it('finds no corners in images too small for the 3-pixel border', () => {
    for (const [w, h] of [[1, 1], [6, 50], [50, 6]] as const) {
      const c = detectCorners({ width: w, height: h, depth: 8, pixels: new Uint8Array(w * h).map((_, i) => (i * 97) % 256) }, { threshold: 1 });
      expect(c.count).toBe(0);
    }
  });
});

describe('bad input gives a typed error naming the argument', () => {
  const good = (): Image => ({ width: 16, height: 16, depth: 8, pixels: new Uint8Array(256) });
  const cases: [string, () => unknown, ErrorConstructor, RegExp][] = [
    ['wrong length', () => detectCorners({ ...good(), pixels: new Uint8Array(255) }, { threshold: 1 }), RangeError, /img\.pixels has 255 elements, expected width\*height = 16\*16 = 256/],
    ['zero width', () => detectCorners({ ...good(), width: 0, pixels: new Uint8Array(0) }, { threshold: 1 }), RangeError, /img\.width must be an integer from 1 to 65536.*got 0/],
    ['empty image', () => detectCorners({ width: 0, height: 0, depth: 8, pixels: new Uint8Array(0) }, { threshold: 1 }), RangeError, /img\.width.*empty image/],
    ['fractional height', () => detectCorners({ ...good(), height: 15.5 }, { threshold: 1 }), RangeError, /img\.height must be an integer.*got 15\.5/],
    ['depth 12', () => detectCorners({ ...good(), depth: 12 as 8 }, { threshold: 1 }), RangeError, /img\.depth must be 8 or 16, got 12/],
    ['depth 16 with bytes', () => detectCorners({ ...good(), depth: 16 }, { threshold: 1 }), TypeError, /img\.pixels must be a Uint16Array for a 16-bit image, got Uint8Array/],
    ['plain array', () => detectCorners({ ...good(), pixels: [1, 2] as unknown as Uint8Array }, { threshold: 1 }), TypeError, /img\.pixels must be a Uint8Array.*got Array/],
    ['NaN threshold', () => detectCorners(good(), { threshold: NaN }), RangeError, /opts\.threshold must be an integer from 0 to 255 for a 8-bit image, got NaN/],
    ['negative threshold', () => detectCorners(good(), { threshold: -1 }), RangeError, /opts\.threshold must be an integer from 0 to 255.*got -1/],
    ['8-bit threshold 256', () => detectCorners(good(), { threshold: 256 }), RangeError, /from 0 to 255/],
    ['threshold as text', () => detectCorners(good(), { threshold: '20' as unknown as number }), TypeError, /opts\.threshold must be a number, got string/],
    ['N = 0', () => detectCorners(good(), { threshold: 1, maxCorners: 0 }), RangeError, /opts\.maxCorners must be an integer from 1 to \d+, got 0/],
    ['N < 0', () => detectCorners(good(), { threshold: 1, maxCorners: -5 }), RangeError, /opts\.maxCorners.*got -5/],
    ['threads 0', () => detectCorners(good(), { threshold: 1, threads: 0 }), RangeError, /opts\.threads must be an integer from 1/],
    ['no image', () => detectCorners(null as unknown as Image, { threshold: 1 }), TypeError, /img must be an Image/],
    ['no options', () => detectCorners(good(), undefined as unknown as { threshold: number }), TypeError, /opts must be an object/],
  ];
  for (const [name, call, type, message] of cases) {
    it(name, () => {
      expect(call).toThrow(type);
      expect(call).toThrow(message);
    });
  }

  it('a detached buffer', () => {
    const img = good();
    structuredClone(img.pixels.buffer, { transfer: [img.pixels.buffer] });
    expect(() => detectCorners(img, { threshold: 1 })).toThrow(/img\.pixels: the buffer is detached/);
  });

  it('accepts pixels in a SharedArrayBuffer (they cannot be detached)', () => {
    const img = scene(90, 70, 4);
    const shared = new Uint8Array(new SharedArrayBuffer(img.pixels.length));
    shared.set(img.pixels);
    expect(arrays(detectCorners({ ...img, pixels: shared }, { threshold: 9 }))).toEqual(arrays(detectCorners(img, { threshold: 9 })));
  });

  it('reads a Buffer view at a byte offset in place', () => {
    const img = scene(90, 70, 4);
    const big = Buffer.alloc(img.pixels.length + 13, 255);
    big.set(img.pixels, 13);
    const view = big.subarray(13);
    expect(view.byteOffset).toBeGreaterThan(0);
    expect(arrays(detectCorners({ ...img, pixels: view }, { threshold: 9 }))).toEqual(arrays(detectCorners(img, { threshold: 9 })));
  });

  it('rejects the promise of the async call', async () => {
    await expect(detectCornersAsync(good(), { threshold: -3 })).rejects.toThrow(/opts\.threshold.*got -3/);
  });

  it('the addon re-checks what the wrapper checks (a direct call cannot read out of bounds)', () => {
    const px = new Uint8Array(100);
    expect(() => native.detect(px, 10, 10, 9, 8, 1, 0, 0, 1, true)).toThrow(/stride must be at least width \(10\), got 9/);
    expect(() => native.detect(px, 10, 10, 11, 8, 1, 0, 0, 1, true)).toThrow(/pixels has 100 elements, needs at least 109/);
    expect(() => native.detect(px, 10, 10, 10, 16, 1, 0, 0, 1, true)).toThrow(/pixels must be a Uint16Array for depth 16/);
    expect(() => native.detect(px, 10, 10, 10, 8, 300, 0, 0, 1, true)).toThrow(/threshold must be an integer from 0 to 255, got 300/);
    expect(() => native.detect(px, 0, 10, 10, 8, 1, 0, 0, 1, true)).toThrow(/width must be an integer from 1/);
    expect(() => native.detect(px, 10, 10, 10, 8, NaN, 0, 0, 1, true)).toThrow(RangeError);
    const gone = new Uint8Array(100);
    structuredClone(gone.buffer, { transfer: [gone.buffer] });
    expect(() => native.detect(gone, 10, 10, 10, 8, 1, 0, 0, 1, true)).toThrow(/detached/);
    // A row stride larger than the width reads only each row's first `width` pixels.
    const padded = new Uint8Array(12 * 10).fill(9);
    expect(native.detect(padded, 10, 10, 12, 8, 1, 0, 0, 1, true).count).toBe(0);
  });
});

describe('xpole corners', () => {
  const cli = (...args: string[]) => spawnSync(process.execPath, [path.join(ROOT, 'bin/xpole.js'), 'corners', ...args], { encoding: 'utf8', cwd: ROOT });

  it('prints one SPEC line per corner with --json, 8- and 16-bit files, default thresholds 20 and 20*257', async () => {
    const img8 = scene(320, 280, 11);
    const img16 = times256(img8);
    const f8 = path.join(tmp, 'f8.png'), f16 = path.join(tmp, 'f16.png');
    writeFileSync(f8, await encodePng(img8));
    writeFileSync(f16, await encodePng(img16));
    expect(defaultThreshold(16)).toBe(20 * 257);
    for (const [file, img] of [[f8, img8], [f16, img16]] as const) {
      const r = cli(file, '--json');
      expect(r.status, r.stderr).toBe(0);
      const lines = r.stdout.trim().split('\n').map((l) => JSON.parse(l) as Record<string, number>);
      const want = detectCorners(img, { threshold: defaultThreshold(img.depth) });
      expect(lines.length).toBe(want.count);
      expect(Object.keys(lines[0]!)).toEqual(['x', 'y', 'score', 'harris', 'angle']);
      lines.forEach((l, i) => expect([l.x, l.y, l.score]).toEqual([want.x[i], want.y[i], want.score[i]]));
    }
    const top = cli(f8, '--json', '--max', '7', '--threshold', '5');
    expect(top.status).toBe(0);
    const want = detectCorners(img8, { threshold: 5, maxCorners: 7 });
    expect(top.stdout.trim().split('\n').map((l) => (JSON.parse(l) as { x: number }).x)).toEqual(Array.from(want.x));
  });

  it('exits 2 naming the flag on bad usage, 1 on an unreadable frame', () => {
    const f = path.join(tmp, 'junk.png');
    writeFileSync(f, 'not an image');
    expect(cli(f, '--threshold', '-1').status).toBe(2);
    const bad = cli(path.join(tmp, 'f8.png'), '--max', '0');
    expect([bad.status, bad.stderr]).toEqual([2, expect.stringMatching(/--max must be an integer from 1/)]);
    expect(cli().status).toBe(2);
    const junk = cli(f);
    expect([junk.status, junk.stderr]).toEqual([1, expect.stringMatching(/DECODE_ERROR/)]);
  });
});
