import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { canonicalAffine, canonicalAffineArray, canonicalSize, toCanonical } from '../src/frame/orientation.ts';
import { DEFAULT_RECIPE } from '../src/inspect/recipe.ts';
import { native } from '../src/native.ts';
import { applyPolish, polishPatches } from '../src/vision/polish.ts';
import { sampleBilinear } from '../src/vision/sample.ts';
import { ORIENTATIONS, type Image, type Orientation } from '../src/types.ts';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const PEER = path.join(ROOT, 'training/polish.py');
const INPUT = { patch: 32, anode: 1, cathode: -1 };
const SHEETS = DEFAULT_RECIPE.sheets;
const tmp = mkdtempSync(path.join(tmpdir(), 'xpole-polish-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32);
}

/** A canonical scene (ramp + noise) of cw x ch, as a frame delivered in orientation `o`. */
function sceneAs(o: Orientation, cw: number, ch: number, depth: 8 | 16): Image {
  const rand = rng(7);
  const max = depth === 8 ? 255 : 65535;
  const canon = new Float64Array(cw * ch);
  for (let y = 0; y < ch; y++) for (let x = 0; x < cw; x++) canon[y * cw + x] = Math.round((0.3 * (x / cw) + 0.4 * (y / ch) + 0.3 * rand()) * max);
  // Frame size: the canonical size of a frame of (w, h) is (cw, ch); tips-up / -down swap the sides.
  const [width, height] = o === 'tips-up' || o === 'tips-down' ? [ch, cw] : [cw, ch];
  expect(canonicalSize(width, height, o)).toEqual([cw, ch]);
  const pixels = depth === 8 ? new Uint8Array(width * height) : new Uint16Array(width * height);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const [xc, yc] = toCanonical(x, y, width, height, o);
      pixels[y * width + x] = canon[Math.round(yc) * cw + Math.round(xc)]!;
    }
  }
  return { width, height, depth, pixels };
}

/** Frame coordinates of canonical points. */
function toFrame(img: Image, o: Orientation, pts: [number, number][]): { x: Float64Array; y: Float64Array } {
  const a = canonicalAffine(img.width, img.height, o);
  return {
    x: Float64Array.from(pts, ([xc, yc]) => a.ox + xc * a.exx + yc * a.eyx),
    y: Float64Array.from(pts, ([xc, yc]) => a.oy + xc * a.exy + yc * a.eyy),
  };
}

// Canonical points: inside, near the top-left corner (patch leaves the frame), off-grid.
const POINTS: [number, number][] = [
  [60.25, 40.5],
  [3.7, 2.1],
  [110.9, 70.35],
];

describe('polishPatches', () => {
  it('sees the same patch of a scene whichever way the frame is delivered', () => {
    const ref = (() => {
      const img = sceneAs('tips-right', 120, 80, 16);
      const { x, y } = toFrame(img, 'tips-right', POINTS);
      return polishPatches(img, 'tips-right', x, y, SHEETS, [0, 1, 2], INPUT);
    })();
    for (const o of ORIENTATIONS) {
      const img = sceneAs(o, 120, 80, 16);
      const { x, y } = toFrame(img, o, POINTS);
      const p = polishPatches(img, o, x, y, SHEETS, [0, 1, 2], INPUT);
      let worst = 0;
      for (let i = 0; i < p.length; i++) worst = Math.max(worst, Math.abs(p[i]! - ref[i]!));
      expect(worst, o).toBeLessThan(1e-4);
    }
  });

  it('z-scores each patch and fills the second channel with the sheet kind', () => {
    const img = sceneAs('tips-up', 120, 80, 8);
    const { x, y } = toFrame(img, 'tips-up', POINTS);
    // Poles 4 (A2) and 5 (C2) of the recipe's A C A ... order.
    const p = polishPatches(img, 'tips-up', [0, 0, 0, 0, x[0]!, x[2]!], [0, 0, 0, 0, y[0]!, y[2]!], SHEETS, [4, 5], INPUT);
    const area = 32 * 32;
    for (const [n, kind] of [
      [0, 1],
      [1, -1],
    ] as const) {
      const c0 = p.subarray(n * 2 * area, n * 2 * area + area);
      const mean = c0.reduce((s, v) => s + v, 0) / area;
      const sd = Math.sqrt(c0.reduce((s, v) => s + (v - mean) ** 2, 0) / area);
      expect(Math.abs(mean)).toBeLessThan(1e-5);
      expect(sd).toBeCloseTo(1, 4);
      expect(new Set(p.subarray(n * 2 * area + area, (n + 1) * 2 * area))).toEqual(new Set([kind]));
    }
  });

  it('gives a flat patch as zeros, not NaN (the deviation is floored)', () => {
    const img: Image = { width: 100, height: 100, depth: 8, pixels: new Uint8Array(100 * 100).fill(90) };
    img.pixels.fill(200, 0, 100 * 10); // a bright band far from the first pole: the joint range is not 0
    const p = polishPatches(img, 'tips-right', [50, 50], [80, 5], SHEETS, [0, 1], INPUT);
    expect(p.subarray(0, 32 * 32).every((v) => v === 0)).toBe(true);
    expect(p.every(Number.isFinite)).toBe(true);
  });

  for (const o of ORIENTATIONS) {
    it(`matches training/polish.py's patches (${o})`, () => {
      const img = sceneAs(o, 120, 80, 16);
      const { x, y } = toFrame(img, o, POINTS);
      const ours = polishPatches(img, o, x, y, SHEETS, [0, 1, 2], INPUT);
      const raw = path.join(tmp, `${o}.bin`);
      const out = path.join(tmp, `${o}.f32`);
      writeFileSync(raw, new Uint8Array(img.pixels.buffer, img.pixels.byteOffset, img.pixels.byteLength));
      const poles = [0, 1, 2].map((i) => `${x[i]},${y[i]}`).join(',');
      execFileSync('/usr/bin/python3', [
        PEER, 'peer', '--frame', raw, '--width', String(img.width), '--height', String(img.height), '--depth', '16',
        '--orientation', o, '--poles', poles, '--kinds', 'ACA', '--out', out,
      ]);
      const b = readFileSync(out);
      const theirs = new Float32Array(b.buffer, b.byteOffset, b.byteLength / 4);
      expect(theirs.length).toBe(ours.length);
      let worst = 0;
      for (let i = 0; i < ours.length; i++) worst = Math.max(worst, Math.abs(ours[i]! - theirs[i]!));
      expect(worst).toBeLessThan(1e-3);
    });
  }
});

describe('samplePatches in the addon', () => {
  for (const depth of [8, 16] as const) {
    it(`equals bilinear sampling point by point, to the bit (${depth}-bit, every orientation, patches across the edges)`, () => {
      const r = rng(depth);
      let checked = 0;
      for (const o of ORIENTATIONS) {
        const img = sceneAs(o, 90, 70, depth);
        // Inside, on the edges and past them: every sample is clamped to the edge pixel centres.
        const x = Float64Array.from({ length: 6 }, () => -20 + r() * (img.width + 40));
        const y = Float64Array.from({ length: 6 }, () => -20 + r() * (img.height + 40));
        const side = 9;
        const out = new Float32Array(6 * 2 * side * side).fill(Number.NaN);
        native.samplePatches(img.pixels, img.width, img.height, depth, canonicalAffineArray(img.width, img.height, o), x, y, side, 2 * side * side, out);
        const { exx, exy, eyx, eyy } = canonicalAffine(img.width, img.height, o);
        for (let k = 0; k < 6; k++) {
          for (let row = 0; row < side; row++) {
            for (let col = 0; col < side; col++) {
              const u = col - (side - 1) / 2;
              const v = row - (side - 1) / 2;
              const want = Math.fround(sampleBilinear(img, x[k]! + u * exx + v * eyx, y[k]! + u * exy + v * eyy));
              const got = out[k * 2 * side * side + row * side + col]!;
              if (got !== want) expect.fail(`${o} patch ${k} (${row}, ${col}): ${got}, not ${want}`);
              checked++;
            }
          }
          // The stride's gap is left alone.
          expect(out.subarray(k * 2 * side * side + side * side, (k + 1) * 2 * side * side).every(Number.isNaN)).toBe(true);
        }
      }
      expect(checked).toBe(4 * 6 * 81);
    });
  }

  it('refuses what would read or write outside its arrays, naming it', () => {
    const px = new Uint16Array(40 * 30);
    const aff = canonicalAffineArray(40, 30, 'tips-right');
    const one = new Float64Array([10]);
    const call = (x: Float64Array, y: Float64Array, side: number, stride: number, out: Float32Array) => () =>
      native.samplePatches(px, 40, 30, 16, aff, x, y, side, stride, out);
    expect(call(one, one, 4, 16, new Float32Array(16))).not.toThrow();
    expect(call(new Float64Array([Number.NaN]), one, 4, 16, new Float32Array(16))).toThrow(/x must hold finite numbers/);
    expect(call(one, new Float64Array([-1e300]), 4, 16, new Float32Array(16))).toThrow(/a point's y lies far outside any frame/);
    expect(call(one, new Float64Array([1, 2]), 4, 16, new Float32Array(16))).toThrow(/y must be a Float64Array of 1/);
    expect(call(one, one, 4, 15, new Float32Array(16))).toThrow(/stride must be at least side \* side \(16\)/);
    expect(call(new Float64Array([1, 2]), new Float64Array([1, 2]), 4, 20, new Float32Array(35))).toThrow(/out holds 35 values, needs 36/);
    expect(() => native.samplePatches(px, 40, 31, 16, aff, one, one, 4, 16, new Float32Array(16))).toThrow(/pixels/);
  });
});

describe('applyPolish', () => {
  for (const o of ORIENTATIONS) {
    it(`moves along the tips and across the sheets as the frame is delivered (${o})`, () => {
      const a = canonicalAffine(1000, 600, o);
      const x = Float64Array.from([100, 200, 300]);
      const y = Float64Array.from([50, 60, 70]);
      // Pole 0: 1 px toward the tips; pole 2: 6 px along and 8 across, capped at 3 px; pole 1 not given.
      const r = applyPolish(1000, 600, o, x, y, [0, 2], Float32Array.from([1, 0, 6, 8]), 3);
      expect(r.x[0]! - 100).toBeCloseTo(a.exx, 9);
      expect(r.y[0]! - 50).toBeCloseTo(a.exy, 9);
      expect([r.x[1], r.y[1]]).toEqual([200, 60]);
      expect(Math.hypot(r.x[2]! - 300, r.y[2]! - 70)).toBeCloseTo(3, 9);
      expect(r.x[2]! - 300).toBeCloseTo(0.6 * 3 * a.exx + 0.8 * 3 * a.eyx, 9);
      expect(r.y[2]! - 70).toBeCloseTo(0.6 * 3 * a.exy + 0.8 * 3 * a.eyy, 9);
      // The input stays as it was.
      expect(Array.from(x)).toEqual([100, 200, 300]);
    });
  }
});
