// Seeded fuzzing of the addon's entry points: detectCorners / detectCornersAsync (the TS wrapper)
// and native.detect itself (the only path that takes a stride), with random sizes, strides, depths,
// thresholds, maxCorners, borders and threads, valid and invalid. The properties: an invalid call
// throws a TypeError or RangeError (never a crash, never another error); a valid call returns
// corners inside the image whose arrays agree; stride padding, sync vs async, and the number of
// row-band threads never change the result.
import { describe, expect, it } from 'vitest';
import { native } from '../../src/native.ts';
import { detectCorners, detectCornersAsync } from '../../src/vision/corners.ts';
import type { Corners, Image } from '../../src/types.ts';
import { caseRng, FUZZ_SECONDS, FUZZ_SEED, FUZZ_TIMEOUT_MS, fuzzFor, int, pick } from './fuzz.ts';

type Rnd = () => number;

/** Pixels with corners to find: random rectangles over noise, in the depth's full range. */
function pixels(rnd: Rnd, width: number, height: number, depth: 8 | 16, stride: number): Uint8Array | Uint16Array {
  const max = depth === 8 ? 255 : 65535;
  const px = depth === 8 ? new Uint8Array(stride * height) : new Uint16Array(stride * height);
  const noise = rnd() * 0.2 * max;
  for (let i = 0; i < px.length; i++) px[i] = Math.floor(rnd() * noise);
  for (let r = int(rnd, 0, 12); r > 0; r--) {
    const x0 = int(rnd, 0, width - 1), y0 = int(rnd, 0, height - 1);
    const x1 = Math.min(width, x0 + int(rnd, 1, 40)), y1 = Math.min(height, y0 + int(rnd, 1, 40));
    const v = int(rnd, 0, max);
    for (let y = y0; y < y1; y++) px.fill(v, y * stride + x0, y * stride + x1);
  }
  if (stride > width) {
    // padding holds garbage that must never be read as pixels
    for (let y = 0; y < height; y++) for (let x = width; x < stride; x++) px[y * stride + x] = int(rnd, 0, max);
  }
  return px;
}

function compact(px: Uint8Array | Uint16Array, width: number, height: number, stride: number): Uint8Array | Uint16Array {
  const out = px instanceof Uint8Array ? new Uint8Array(width * height) : new Uint16Array(width * height);
  for (let y = 0; y < height; y++) out.set(px.subarray(y * stride, y * stride + width), y * width);
  return out;
}

function checkCorners(c: Corners, width: number, height: number): string | null {
  for (const k of ['x', 'y', 'score', 'harris', 'angle'] as const) {
    if (!(c[k] instanceof Float32Array) || c[k].length < c.count) return `${k} has ${c[k]?.length} entries for count ${c.count}`;
  }
  for (let i = 0; i < c.count; i++) {
    const x = c.x[i]!, y = c.y[i]!;
    if (!(x >= 0 && x < width && y >= 0 && y < height)) return `corner ${i} at (${x}, ${y}) outside ${width}x${height}`;
    if (!Number.isFinite(c.score[i]!) || !Number.isFinite(c.harris[i]!)) return `corner ${i} has a non-finite score`;
    if (!(c.angle[i]! >= 0 && c.angle[i]! < 360)) return `corner ${i} has angle ${c.angle[i]}`;
  }
  return null;
}

function same(a: Corners, b: Corners): boolean {
  if (a.count !== b.count) return false;
  for (let i = 0; i < a.count; i++) {
    if (a.x[i] !== b.x[i] || a.y[i] !== b.y[i] || a.score[i] !== b.score[i] || a.harris[i] !== b.harris[i]) return false;
  }
  return true;
}

const BAD_NUMBERS = [-1, 0.5, NaN, Infinity, -Infinity, 2 ** 31, 1e300, -0.0001];
const BAD_VALUES: unknown[] = ['10', null, undefined, {}, [], true, 10n];

/** A call that is invalid in one chosen way; returns its arguments for native.detect and what was broken. */
function invalidNative(rnd: Rnd): { args: unknown[]; what: string } {
  const width = int(rnd, 1, 64), height = int(rnd, 1, 64), depth = pick(rnd, [8, 16] as const);
  const px = pixels(rnd, width, height, depth, width);
  const args: unknown[] = [px, width, height, width, depth, int(rnd, 0, 40), 0, 0, 1, true];
  const which = int(rnd, 0, 11);
  const what = ['pixels', 'width', 'height', 'stride', 'depth', 'threshold', 'maxCorners', 'border', 'threads', 'describe', 'short', 'few'][which]!;
  switch (which) {
    case 0:
      args[0] = pick(rnd, [
        depth === 8 ? new Uint16Array(width * height) : new Uint8Array(width * height),
        new Float32Array(width * height), new Int16Array(width * height), Array.from(px), px.buffer, null, 'pixels',
      ]);
      break;
    case 10: // fewer elements than width x height needs
      args[0] = px.subarray(0, int(rnd, 0, px.length - 1));
      break;
    case 11:
      args.length = int(rnd, 0, 9);
      break;
    case 9:
      args[9] = pick(rnd, [1, 0, 'yes', null, undefined]);
      break;
    case 3: // stride below width, or so large the buffer cannot hold it
      args[3] = pick(rnd, [width - 1, width * 2 + 1, ...BAD_NUMBERS, ...BAD_VALUES]);
      if (args[3] === width * 2 + 1 && height === 1) args[2] = 2;
      break;
    case 4:
      args[4] = pick(rnd, [0, 1, 7, 9, 12, 15, 17, 32, ...BAD_NUMBERS, ...BAD_VALUES]);
      break;
    case 5:
      args[5] = pick(rnd, [depth === 8 ? 256 : 65536, ...BAD_NUMBERS, ...BAD_VALUES]);
      break;
    default:
      args[which] = pick(rnd, [...BAD_NUMBERS, ...BAD_VALUES, which === 8 ? 0 : -5, which === 8 ? 65 : 2 ** 31]);
  }
  return { args, what };
}

describe('addon fuzz', () => {
  it(
    `native.detect / detectCorners keep their contract on random valid and invalid calls (${FUZZ_SECONDS} s, seed ${FUZZ_SEED})`,
    async () => {
      const failures: string[] = [];
      const tally = { valid: 0, corners: 0, rejected: 0 };
      const count = await fuzzFor(FUZZ_SECONDS, async (i) => {
        const rnd = caseRng(i);
        const tag = `case ${i}`;
        if (rnd() < 0.4) {
          const { args, what } = invalidNative(rnd);
          try {
            (native.detect as (...a: unknown[]) => unknown)(...args);
            failures.push(`${tag}: native.detect accepted a bad ${what}: ${String(args[['pixels', 'width', 'height', 'stride', 'depth', 'threshold', 'maxCorners', 'border', 'threads', 'describe'].indexOf(what)])}`);
          } catch (e) {
            if (e instanceof TypeError || e instanceof RangeError) tally.rejected++;
            else failures.push(`${tag}: bad ${what} threw ${(e as Error)?.name}: ${(e as Error)?.message}`);
          }
          return;
        }
        const depth = pick(rnd, [8, 16] as const);
        // Mostly small frames (fast), sometimes thin or a row of one pixel: FAST needs a 3-pixel margin.
        const width = pick(rnd, [int(rnd, 1, 8), int(rnd, 7, 200), int(rnd, 200, 700)]);
        const height = pick(rnd, [int(rnd, 1, 8), int(rnd, 7, 200), int(rnd, 200, 500)]);
        const stride = rnd() < 0.5 ? width : width + int(rnd, 1, 33);
        const px = pixels(rnd, width, height, depth, stride);
        const threshold = int(rnd, 0, depth === 8 ? 255 : 65535) >> int(rnd, 0, depth === 8 ? 6 : 12);
        const maxCorners = pick(rnd, [0, 0, 1, int(rnd, 1, 50), int(rnd, 50, 5000)]);
        const border = pick(rnd, [0, 0, int(rnd, 0, 40)]);
        const threads = pick(rnd, [1, 1, 2, int(rnd, 1, 64)]);
        const describe = rnd() < 0.8;
        try {
          const padded = native.detect(px, width, height, stride, depth, threshold, maxCorners, border, threads, describe);
          const bad = checkCorners(padded, width, height);
          if (bad) failures.push(`${tag} (${width}x${height}/${stride} d${depth} t${threshold} n${maxCorners} b${border} j${threads}): ${bad}`);
          const img: Image = { width, height, depth, pixels: compact(px, width, height, stride) };
          const dense = native.detect(img.pixels, width, height, width, depth, threshold, maxCorners, border, 1, describe);
          if (!same(padded, dense)) failures.push(`${tag}: stride ${stride} or ${threads} threads changed the corners of ${width}x${height} (${padded.count} vs ${dense.count})`);
          if (describe) {
            const opts = { threshold, ...(maxCorners ? { maxCorners } : {}), ...(border ? { border } : {}) };
            const sync = detectCorners(img, opts);
            // The async path copies the pixels first: detaching the buffer right after the call must not matter.
            const pending = detectCornersAsync(img, opts);
            structuredClone(img.pixels.buffer, { transfer: [img.pixels.buffer as ArrayBuffer] });
            const async = await pending;
            if (!same(sync, dense) || !same(async, dense)) failures.push(`${tag}: detectCorners / detectCornersAsync differ from native.detect`);
          }
          tally.valid++;
          tally.corners += dense.count;
        } catch (e) {
          failures.push(`${tag} (${width}x${height}/${stride} d${depth} t${threshold} n${maxCorners} b${border} j${threads}): threw ${(e as Error)?.name}: ${(e as Error)?.message}`);
        }
      });
      console.log(`addon fuzz: ${count} cases, seed ${FUZZ_SEED}:`, JSON.stringify(tally));
      expect(failures.slice(0, 20)).toEqual([]);
      expect(tally.rejected).toBeGreaterThan(0);
      expect(tally.corners).toBeGreaterThan(0);
    },
    FUZZ_TIMEOUT_MS,
  );

  it('the wrapper refuses malformed images with a TypeError or RangeError naming the field', () => {
    const good = { width: 300, height: 300, depth: 8 as const, pixels: new Uint8Array(90_000) };
    const detached = new Uint8Array(90_000);
    structuredClone(detached.buffer, { transfer: [detached.buffer] });
    const cases: [unknown, unknown, RegExp][] = [
      [null, { threshold: 20 }, /img/],
      [{ ...good, depth: 12 }, { threshold: 20 }, /depth/],
      [{ ...good, pixels: new Uint16Array(90_000) }, { threshold: 20 }, /pixels/],
      [{ ...good, pixels: new Float32Array(90_000) }, { threshold: 20 }, /pixels/],
      [{ ...good, pixels: detached }, { threshold: 20 }, /detached/],
      [{ ...good, width: 301 }, { threshold: 20 }, /pixels|width/],
      [{ ...good, width: 0, pixels: new Uint8Array(0) }, { threshold: 20 }, /width/],
      [{ ...good, width: 150.5 }, { threshold: 20 }, /width/],
      [good, null, /opts/],
      [good, { threshold: 256 }, /threshold/],
      [good, { threshold: -1 }, /threshold/],
      [good, { threshold: NaN }, /threshold/],
      [good, { threshold: '20' }, /threshold/],
      [good, { threshold: 20, maxCorners: 0 }, /maxCorners/],
      [good, { threshold: 20, maxCorners: 1.5 }, /maxCorners/],
      [good, { threshold: 20, threads: 0 }, /threads/],
      [good, { threshold: 20, border: -3 }, /border/],
    ];
    for (const [img, opts, field] of cases) {
      let err: unknown = null;
      try {
        detectCorners(img as Image, opts as { threshold: number });
      } catch (e) {
        err = e;
      }
      expect(err instanceof TypeError || err instanceof RangeError, `${JSON.stringify(opts)} ${String(err)}`).toBe(true);
      expect((err as Error).message).toMatch(field);
    }
  });
});
