// The ROI stage's pixel loops in the addon (native/sheets.cc) against the TypeScript they
// replaced, kept here as the reference: equal to the bit, for both depths, every orientation and
// windows that leave the frame; and the wrapper's refusals.
import { describe, expect, it } from 'vitest';
import { fromCanonical } from '../src/frame/orientation.ts';
import { native } from '../src/native.ts';
import { ORIENTATIONS, type Image, type Orientation } from '../src/types.ts';
import { halfSize, rectSums, sampledRange, stripeMean, type CanonicalWindow } from '../src/vision/sheets.ts';
import { prng } from './helpers/prng.ts';

/** Horizontal sheets (dark lines on a light field) over noise, so both derivative terms matter. */
function sheetsFrame(width: number, height: number, depth: 8 | 16, seed: number): Image {
  const r = prng(seed);
  const full = depth === 8 ? 255 : 65535;
  const pixels = depth === 8 ? new Uint8Array(width * height) : new Uint16Array(width * height);
  for (let y = 0; y < height; y++) {
    const line = y % 7 < 2 ? 0.35 : 0.8;
    for (let x = 0; x < width; x++) {
      const tip = x < width * 0.6 + ((y * 13) % 17) ? line : 0.9;
      pixels[y * width + x] = Math.min(full, Math.round(full * (tip + 0.1 * r())));
    }
  }
  return { width, height, depth, pixels };
}

/** The TypeScript stripe score xpole ran before the addon took it over. */
function stripesReference(img: Image, orientation: Orientation, w: CanonicalWindow, smooth: number): number {
  const { width: W, height: H, pixels } = img;
  const sx = Math.max(1, (w.x1 - w.x0) / 64);
  const sy = Math.max(1, (w.y1 - w.y0) / 64);
  const d = 2;
  const [ox, oy] = fromCanonical(0, 0, W, H, orientation);
  const [px, py] = fromCanonical(1, 0, W, H, orientation);
  const [qx, qy] = fromCanonical(0, 1, W, H, orientation);
  const ax = px - ox, ay = py - oy, bx = qx - ox, by = qy - oy;
  const half = (smooth - 1) / 2;
  const run = (xc: number, yc: number, ux: number, uy: number): number => {
    const x = Math.round(ox + ax * xc + bx * yc);
    const y = Math.round(oy + ay * xc + by * yc);
    let s = 0;
    for (let k = -half; k <= half; k++) {
      s += pixels[Math.min(H - 1, Math.max(0, y + k * uy)) * W + Math.min(W - 1, Math.max(0, x + k * ux))];
    }
    return s / smooth;
  };
  let sum = 0;
  let n = 0;
  for (let yc = w.y0; yc <= w.y1; yc += sy) {
    for (let xc = w.x0; xc <= w.x1; xc += sx) {
      sum += Math.abs(run(xc, yc + d, ax, ay) - run(xc, yc - d, ax, ay)) - Math.abs(run(xc + d, yc, bx, by) - run(xc - d, yc, bx, by));
      n++;
    }
  }
  return n > 0 ? sum / n : 0;
}

describe('stripeMean', () => {
  for (const depth of [8, 16] as const) {
    it(`equals the TypeScript reference to the bit (${depth}-bit, every orientation, windows inside and across the edges)`, () => {
      const img = sheetsFrame(301, 219, depth, depth);
      const r = prng(7 + depth);
      let positive = 0;
      for (const o of ORIENTATIONS) {
        for (let i = 0; i < 40; i++) {
          // Fractional corners, some beyond the frame (the score clamps runs at its edge).
          const x0 = -40 + r() * 300;
          const y0 = -40 + r() * 250;
          const w = { x0, x1: x0 + r() * 200, y0, y1: y0 + r() * 150 };
          const smooth = 1 + 2 * Math.floor(r() * 6);
          const got = stripeMean(img, o, w, smooth);
          expect(got, `${o} ${JSON.stringify(w)} smooth ${smooth}`).toBe(stripesReference(img, o, w, smooth));
          if (got > 0) positive++;
        }
      }
      // The frame's sheets run along frame rows, canonical rows only for tips-right/left: both signs occur.
      expect(positive).toBeGreaterThan(20);
      expect(positive).toBeLessThan(140);
    });
  }

  it('scores horizontal sheets above the same frame turned a quarter', () => {
    const img = sheetsFrame(256, 256, 16, 3);
    const w = { x0: 20, x1: 120, y0: 20, y1: 200 };
    expect(stripeMean(img, 'tips-right', w, 9)).toBeGreaterThan(0);
    expect(stripeMean(img, 'tips-up', w, 9)).toBeLessThan(0);
  });

  it('refuses a bad window or smoothing, naming it', () => {
    const img = sheetsFrame(64, 64, 8, 1);
    expect(() => stripeMean(img, 'tips-right', { x0: NaN, x1: 5, y0: 0, y1: 5 }, 9)).toThrow(/window.x0 must be a finite number/);
    expect(() => stripeMean(img, 'tips-right', { x0: 0, x1: 5, y0: 0, y1: 5 }, 8)).toThrow(/smooth must be an odd integer/);
    expect(() => stripeMean({ ...img, pixels: new Uint16Array(64 * 64) } as Image, 'tips-right', { x0: 0, x1: 5, y0: 0, y1: 5 }, 9)).toThrow(
      /img.pixels must be a Uint8Array for a 8-bit image/,
    );
  });

  it('the addon itself refuses arguments that would read outside the pixels', () => {
    const px = new Uint16Array(100);
    const map = new Float64Array([0, 0, 1, 0, 0, 1]);
    const win = new Float64Array([0, 9, 0, 9]);
    expect(() => native.stripeMean(px, 10, 11, 16, map, win, 9)).toThrow(/pixels has 100 elements, needs at least 110/);
    expect(() => native.stripeMean(px, 10, 10, 16, new Float64Array([0, 0, 2, 0, 0, 1]), win, 9)).toThrow(/must be -1, 0 or 1/);
    expect(() => native.stripeMean(px, 10, 10, 16, map, new Float64Array([0, 9, 0]), 9)).toThrow(/window must be a Float64Array of 4/);
    expect(() => native.stripeMean(px, 10, 10, 16, map, new Float64Array([0, 1e12, 0, 9]), 9)).toThrow(/window lies far outside any frame/);
    // A map's offset that far would overflow the pixel indices (found by test/fuzz/pixels.fuzz.test.ts under UBSan).
    expect(() => native.stripeMean(px, 10, 10, 16, new Float64Array([1e300, 0, 1, 0, 0, 1]), win, 9)).toThrow(/affine's offset \(ox, oy\) lies far outside any frame \(beyond 262144 px\)/);
  });
});

describe('halfSize', () => {
  for (const depth of [8, 16] as const) {
    it(`gives the rounded 2 x 2 means, dropping an odd last row and column (${depth}-bit)`, () => {
      const img = sheetsFrame(37, 24, depth, 11 + depth);
      const half = halfSize(img);
      expect([half.width, half.height, half.depth]).toEqual([18, 12, depth]);
      expect(half.pixels).toBeInstanceOf(depth === 8 ? Uint8Array : Uint16Array);
      const p = img.pixels;
      for (let y = 0; y < 12; y++) {
        for (let x = 0; x < 18; x++) {
          const i = 2 * y * 37 + 2 * x;
          expect(half.pixels[y * 18 + x]).toBe((p[i] + p[i + 1] + p[i + 37] + p[i + 38] + 2) >> 2);
        }
      }
    });
  }

  it('keeps a 16-bit maximum without overflow', () => {
    const img: Image = { width: 4, height: 2, depth: 16, pixels: new Uint16Array(8).fill(65535) };
    expect(Array.from(halfSize(img).pixels)).toEqual([65535, 65535]);
  });

  for (const depth of [8, 16] as const) {
    it(`gives the same means over the full range in the vector loop and its tail (${depth}-bit, 70 px wide)`, () => {
      // 35 outputs a row: two or four 16- or 8-wide vector steps and a scalar tail; values at both
      // ends of the range, where a lane too narrow would wrap.
      const full = depth === 8 ? 255 : 65535;
      const r = prng(40 + depth);
      const pixels = depth === 8 ? new Uint8Array(70 * 4) : new Uint16Array(70 * 4);
      for (let i = 0; i < pixels.length; i++) pixels[i] = r() < 0.4 ? full : r() < 0.2 ? 0 : Math.floor(r() * (full + 1));
      const half = halfSize({ width: 70, height: 4, depth, pixels });
      for (let y = 0; y < 2; y++) {
        for (let x = 0; x < 35; x++) {
          const i = 2 * y * 70 + 2 * x;
          expect(half.pixels[y * 35 + x], `(${x}, ${y})`).toBe((pixels[i] + pixels[i + 1] + pixels[i + 70] + pixels[i + 71] + 2) >> 2);
        }
      }
    });
  }

  it('refuses a frame too small to halve', () => {
    expect(() => halfSize({ width: 1, height: 8, depth: 8, pixels: new Uint8Array(8) })).toThrow(/img.width must be an integer from 2/);
  });
});

describe('rectSums', () => {
  it('sums rows and columns of a rectangle exactly', () => {
    const img = sheetsFrame(50, 40, 16, 5);
    const rows = rectSums(img, 3, 4, 20, 30, true);
    const cols = rectSums(img, 3, 4, 20, 30, false);
    expect(rows.length).toBe(27);
    expect(cols.length).toBe(18);
    for (let y = 4; y <= 30; y++) {
      let s = 0;
      for (let x = 3; x <= 20; x++) s += img.pixels[y * 50 + x];
      expect(rows[y - 4]).toBe(s);
    }
    for (let x = 3; x <= 20; x++) {
      let s = 0;
      for (let y = 4; y <= 30; y++) s += img.pixels[y * 50 + x];
      expect(cols[x - 3]).toBe(s);
    }
  });

  it('sums the longest row and column a frame may have, all at 16-bit maximum, exactly', () => {
    // 65536 x 65535 is 2^32 - 65536: a lane of fewer than 32 bits would wrap.
    const n = 65536;
    const line = new Uint16Array(n).fill(65535);
    expect(Array.from(rectSums({ width: n, height: 1, depth: 16, pixels: line }, 0, 0, n - 1, 0, true))).toEqual([n * 65535]);
    expect(Array.from(rectSums({ width: 1, height: n, depth: 16, pixels: line }, 0, 0, 0, n - 1, false))).toEqual([n * 65535]);
  });

  it('refuses a rectangle outside the frame or out of order', () => {
    const img = sheetsFrame(50, 40, 8, 5);
    expect(() => rectSums(img, 0, 0, 50, 10, true)).toThrow(/inside the 50x40 frame/);
    expect(() => rectSums(img, 10, 0, 5, 10, true)).toThrow(/ordered/);
    expect(() => native.rectSums(img.pixels, 50, 40, 8, 0, 0, 10, 40, true)).toThrow(/y1 must be an integer from 0 to 39/);
  });
});

describe('sampledRange', () => {
  /** The TypeScript grey range xpole ran before the addon took it over. */
  function rangeReference(pixels: Uint8Array | Uint16Array, depth: 8 | 16, step: number): [number, number] {
    const n = Math.ceil(pixels.length / step);
    const counts = new Uint32Array(depth === 8 ? 256 : 65536);
    for (let i = 0; i < pixels.length; i += step) counts[pixels[i]!]!++;
    const at = (q: number): number => {
      const rank = Math.min(n - 1, Math.floor(q * n));
      for (let v = 0, seen = 0; v < counts.length; v++) {
        seen += counts[v]!;
        if (seen > rank) return v;
      }
      return counts.length - 1;
    };
    return [at(0.005), at(0.995)];
  }

  it('gives the sorted samples at floor(0.005 n) and floor(0.995 n), as the TypeScript it replaced', () => {
    const r = prng(21);
    for (const depth of [8, 16] as const) {
      for (const [w, h, step] of [[300, 257, 1], [1024, 1024, 16], [17, 3, 2], [1, 1, 1]] as const) {
        const img = sheetsFrame(w, h, depth, w + step);
        // A few extremes, so the tails are not just noise.
        for (let k = 0; k < 5; k++) img.pixels[Math.floor(r() * w * h)] = depth === 8 ? 255 : 65535;
        expect(sampledRange(img, step)).toEqual(rangeReference(img.pixels, depth, step));
      }
    }
    const sorted = Uint16Array.from({ length: 1000 }, (_, i) => i * 7);
    expect(sampledRange({ width: 1000, height: 1, depth: 16, pixels: sorted }, 1)).toEqual([5 * 7, 995 * 7]);
  });
});
