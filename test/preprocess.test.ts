import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { boxToCanonical, canonicalAffine } from '../src/frame/orientation.ts';
import { ADDON_FILE, native } from '../src/native.ts';
import { cropForModel, cropForModelAsync, samplesPerCell, withMirrored, type InputSize } from '../src/vision/preprocess.ts';
import { ORIENTATIONS, type Box, type Image } from '../src/types.ts';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const PEER = path.join(ROOT, 'training/xpole_crop.py');
const SIZE = { width: 128, height: 256 };
const tmp = mkdtempSync(path.join(tmpdir(), 'xpole-pre-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32);
}

/** A smooth ramp plus noise, so a wrong sample position shows up as a wrong value. */
function frame(width: number, height: number, depth: 8 | 16, seed: number): Image {
  const rand = rng(seed);
  const max = depth === 8 ? 255 : 65535;
  const pixels = depth === 8 ? new Uint8Array(width * height) : new Uint16Array(width * height);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const v = 0.3 * (x / width) + 0.4 * (y / height) + 0.3 * rand();
      pixels[y * width + x] = Math.round(v * max);
    }
  }
  return { width, height, depth, pixels };
}

/** The training code's crop; `height` is a taller model's input (XPOLE_INPUT_HEIGHT, as training sets it). */
function peerCrop(img: Image, box: Box, o: string, name: string, height = 256): Float32Array {
  const raw = path.join(tmp, `${name}.bin`);
  const out = path.join(tmp, `${name}.f32`);
  const bytes = img.depth === 8 ? img.pixels : new Uint8Array(img.pixels.buffer, img.pixels.byteOffset, img.pixels.byteLength);
  writeFileSync(raw, bytes);
  execFileSync('/usr/bin/python3', [
    PEER,
    '--frame', raw, '--width', String(img.width), '--height', String(img.height), '--depth', String(img.depth),
    `--box=${box.join(',')}`, '--orientation', o, '--out', out,
  ], { env: { ...process.env, XPOLE_INPUT_HEIGHT: String(height) } });
  const b = readFileSync(out);
  return new Float32Array(b.buffer, b.byteOffset, b.byteLength / 4);
}

function maxAbsDiff(a: Float32Array, b: Float32Array): number {
  expect(a.length).toBe(b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}

describe('cropForModel against training/xpole_crop.py', () => {
  // One box smaller than the input (s = 1, upsampling) and one larger (s = 3) that leaves the frame.
  const cases: { depth: 8 | 16; box: Box }[] = [
    { depth: 8, box: [40.3, 61.7, 90.2, 150.9] },
    { depth: 16, box: [-20.5, 30.25, 310.4, 390.6] },
  ];
  for (const { depth, box } of cases) {
    for (const o of ORIENTATIONS) {
      it(`${depth}-bit, ${o}, box ${box.join(',')}`, () => {
        const img = frame(300, 420, depth, depth + o.length);
        const ours = cropForModel(img, box, o, SIZE);
        const theirs = peerCrop(img, box, o, `${depth}-${o}`);
        expect(maxAbsDiff(ours, theirs)).toBeLessThan(1e-3);
      });
    }
  }
});

describe('cropForModel for a taller model input (128 x 384) against training/xpole_crop.py', () => {
  const tall = { width: 128, height: 384 };
  for (const o of ['tips-right', 'tips-up'] as const) {
    it(`16-bit, ${o}`, () => {
      const img = frame(300, 420, 16, 40 + o.length);
      const box: Box = [-20.5, 30.25, 310.4, 390.6];
      const ours = cropForModel(img, box, o, tall);
      expect(ours.length).toBe(128 * 384);
      expect(maxAbsDiff(ours, peerCrop(img, box, o, `tall-${o}`, 384))).toBeLessThan(1e-3);
    });
  }
});

describe('cropForModel by hand', () => {
  it('reproduces the frame when every cell sits on a pixel centre, then z-scores it', () => {
    const img = frame(300, 400, 16, 3);
    const out = cropForModel(img, [10.5, 20.5, 128, 256], 'tips-right', SIZE);
    let mean = 0;
    let sq = 0;
    for (let v = 0; v < 256; v++) for (let u = 0; u < 128; u++) mean += img.pixels[(21 + v) * 300 + 11 + u]! / 32768;
    for (let v = 0; v < 256; v++) for (let u = 0; u < 128; u++) sq += (img.pixels[(21 + v) * 300 + 11 + u]! - mean) ** 2 / 32768;
    const std = Math.sqrt(sq);
    for (const [u, v] of [[0, 0], [127, 255], [64, 100]] as const) {
      expect(out[v * 128 + u]).toBeCloseTo((img.pixels[(21 + v) * 300 + 11 + u]! - mean) / std, 4);
    }
  });

  it('averages s x s samples when the box is larger than the input', () => {
    expect(samplesPerCell([0, 0, 256, 512], SIZE)).toBe(2);
    expect(samplesPerCell([0, 0, 129, 100], SIZE)).toBe(2);
    expect(samplesPerCell([0, 0, 50, 50], SIZE)).toBe(1);
    // A 2x box over a frame of 2x2 blocks of equal value gives back the blocks.
    const img: Image = { width: 256, height: 512, depth: 8, pixels: new Uint8Array(256 * 512) };
    for (let y = 0; y < 512; y++) for (let x = 0; x < 256; x++) img.pixels[y * 256 + x] = ((x >> 1) + 3 * (y >> 1)) % 251;
    const out = cropForModel(img, [-0.5, -0.5, 256, 512], 'tips-right', SIZE);
    const ref = cropForModel(
      { width: 128, height: 256, depth: 8, pixels: Uint8Array.from({ length: 128 * 256 }, (_, k) => ((k % 128) + 3 * Math.floor(k / 128)) % 251) },
      [-0.5, -0.5, 128, 256],
      'tips-right',
      SIZE,
    );
    expect(maxAbsDiff(out, ref)).toBeLessThan(1e-5);
  });

  it('does not depend on bit depth and maps a flat crop to zeros', () => {
    const img8 = frame(300, 300, 8, 9);
    const img16: Image = { ...img8, depth: 16, pixels: Uint16Array.from(img8.pixels, (v) => v * 257) };
    const box: Box = [30, 40, 200, 180];
    expect(maxAbsDiff(cropForModel(img8, box, 'tips-up', SIZE), cropForModel(img16, box, 'tips-up', SIZE))).toBeLessThan(1e-5);
    const flat: Image = { width: 300, height: 300, depth: 16, pixels: new Uint16Array(300 * 300).fill(40000) };
    expect(cropForModel(flat, box, 'tips-down', SIZE).every((v) => v === 0)).toBe(true);
  });

  it('sees a tips-left frame as the mirror of a tips-right one', () => {
    const img = frame(300, 300, 8, 4);
    const mirrored: Image = { ...img, pixels: new Uint8Array(img.pixels.length) };
    for (let y = 0; y < 300; y++) for (let x = 0; x < 300; x++) mirrored.pixels[y * 300 + x] = img.pixels[y * 300 + 299 - x]!;
    // Box [x, y, w, h] in the mirrored frame is [W - x - w, y, w, h] in the original (continuous regions).
    const a = cropForModel(img, [299 - 100 - 150, 20, 150, 200], 'tips-left', SIZE);
    const b = cropForModel(mirrored, [100, 20, 150, 200], 'tips-right', SIZE);
    expect(maxAbsDiff(a, b)).toBeLessThan(1e-5);
  });
});

describe('withMirrored (flip test input)', () => {
  it('appends the crop of the frame mirrored top <-> bottom (tips-right and tips-left frames)', () => {
    const img = frame(300, 280, 16, 12);
    const flipped: Image = { ...img, pixels: new Uint16Array(img.pixels.length) };
    for (let y = 0; y < 280; y++) flipped.pixels.set(img.pixels.subarray((279 - y) * 300, (280 - y) * 300), y * 300);
    const box: Box = [30.5, 40.25, 200, 180];
    // The canonical top <-> bottom mirror is the frame's vertical mirror for tips-right/left and
    // its horizontal mirror for tips-up/down; here the tips-right and tips-left cases.
    for (const o of ['tips-right', 'tips-left'] as const) {
      const batch = withMirrored(cropForModel(img, box, o, SIZE), SIZE);
      const n = SIZE.width * SIZE.height;
      expect(batch.length).toBe(2 * n);
      expect(maxAbsDiff(batch.subarray(0, n), cropForModel(img, box, o, SIZE))).toBe(0);
      const seenMirrored = cropForModel(flipped, [box[0], 280 - 1 - box[1] - box[3], box[2], box[3]], o, SIZE);
      expect(maxAbsDiff(batch.subarray(n), seenMirrored)).toBeLessThan(1e-4);
    }
  });
});

/** Sampling point by point: the TypeScript crop xpole ran before the addon took the pixel loop over. */
function cropReference(img: Image, box: Box, o: (typeof ORIENTATIONS)[number], size: InputSize): Float32Array {
  const { width: W, height: H } = size;
  const n = W * H;
  const dst = new Float32Array(n);
  const cb = boxToCanonical(box, img.width, img.height, o);
  const [bx, by, bw, bh] = cb;
  const s = samplesPerCell(cb, size);
  const a = canonicalAffine(img.width, img.height, o);
  const px = img.pixels;
  const fw = img.width;
  const maxX = img.width - 1;
  const maxY = img.height - 1;
  const cellW = bw / W;
  const cellH = bh / H;
  const inv = 1 / (s * s);
  let sum = 0;
  for (let v = 0; v < H; v++) {
    for (let u = 0; u < W; u++) {
      let acc = 0;
      for (let j = 0; j < s; j++) {
        const yc = by + (v + (j + 0.5) / s) * cellH;
        for (let i = 0; i < s; i++) {
          const xc = bx + (u + (i + 0.5) / s) * cellW;
          let x = a.ox + xc * a.exx + yc * a.eyx;
          let y = a.oy + xc * a.exy + yc * a.eyy;
          x = x < 0 ? 0 : x > maxX ? maxX : x;
          y = y < 0 ? 0 : y > maxY ? maxY : y;
          const x0 = Math.floor(x);
          const y0 = Math.floor(y);
          const fx = x - x0;
          const fy = y - y0;
          const x1 = x0 < maxX ? x0 + 1 : x0;
          const r0 = y0 * fw;
          const r1 = (y0 < maxY ? y0 + 1 : y0) * fw;
          const top = px[r0 + x0]! + (px[r0 + x1]! - px[r0 + x0]!) * fx;
          const bot = px[r1 + x0]! + (px[r1 + x1]! - px[r1 + x0]!) * fx;
          acc += top + (bot - top) * fy;
        }
      }
      const val = acc * inv;
      dst[v * W + u] = val;
      sum += val;
    }
  }
  const mean = sum / n;
  let ss = 0;
  for (let k = 0; k < n; k++) {
    const d = dst[k]! - mean;
    ss += d * d;
  }
  const std = Math.max(Math.sqrt(ss / n), 1e-6);
  for (let k = 0; k < n; k++) dst[k] = (dst[k]! - mean) * (1 / std);
  return dst;
}

/** Equal within `tol`, value by value; the first difference is named. */
function expectCloseFloats(got: Float32Array, want: Float32Array, tol: number, what: string): void {
  expect(got.length).toBe(want.length);
  for (let i = 0; i < got.length; i++) if (!(Math.abs(got[i]! - want[i]!) <= tol)) expect.fail(`${what}: value ${i} is ${got[i]}, not ${want[i]}`);
}

describe('cropForModel in the addon', () => {
  it('equals sampling point by point up to rounding (both depths, every orientation, boxes across the edges, 1 to 9 samples a cell)', () => {
    const r = rng(99);
    const size = { width: 32, height: 64 };
    let checked = 0;
    let most = 1;
    for (const depth of [8, 16] as const) {
      const img = frame(301, 257, depth, depth + 1);
      for (const o of ORIENTATIONS) {
        for (let k = 0; k < 8; k++) {
          // Up to 300 x 600 canonical px on a 32 x 64 grid: up to 9 samples a cell side.
          const box: Box = [-30 + r() * 250, -30 + r() * 200, 10 + r() * 290, 20 + r() * 580];
          most = Math.max(most, samplesPerCell(boxToCanonical(box, img.width, img.height, o), size));
          const got = cropForModel(img, box, o, size);
          // The two passes add in another order: z-scored values agree to float32 rounding.
          expectCloseFloats(got, cropReference(img, box, o, size), 1e-5, `${depth}-bit ${o} [${box.join(', ')}]`);
          checked++;
        }
      }
    }
    expect(checked).toBe(64);
    expect(most).toBeGreaterThanOrEqual(8);
  });

  it('refuses an affine that does not map the canonical axes onto the frame axes', () => {
    const px = new Uint16Array(64 * 64);
    const out = new Float32Array(4 * 8);
    const args = (affine: number[]) => [px, 64, 64, 16, new Float64Array(affine), new Float64Array([0, 0, 32, 32]), 4, 8, 2, out] as const;
    expect(() => native.cropForModel(...args([0, 0, 1, 1, 0, 1]))).toThrow(/onto the frame's axes/);
    expect(() => native.cropForModel(...args([0, 0, 0, 0, 1, 1]))).toThrow(/onto the frame's axes/);
    expect(() => native.cropForModel(...args([0, -3e5, 1, 0, 0, 1]))).toThrow(/affine's offset \(ox, oy\) lies far outside any frame/);
    expect(() => native.cropForModel(px, 64, 64, 16, new Float64Array([0, 0, 1, 0, 0, 1]), new Float64Array([1e300, 0, 32, 32]), 4, 8, 2, out)).toThrow(/box lies far outside any frame/);
    // tips-up's rotation is accepted.
    expect(() => native.cropForModel(...args([63, 0, 0, 1, -1, 0]))).not.toThrow();
  });

  it('refuses a box or size that makes no crop, naming it', () => {
    const img = frame(64, 64, 16, 1);
    expect(() => cropForModel(img, [0, 0, 0, 10], 'tips-right', SIZE)).toThrow(/box must be finite with a positive size/);
    expect(() => cropForModel(img, [0, NaN, 10, 10], 'tips-right', SIZE)).toThrow(/box must be finite/);
    expect(() => cropForModel(img, [0, 0, 10, 10], 'tips-right', { width: 0, height: 5 })).toThrow(/input size must be whole numbers/);
    expect(() => cropForModel({ ...img, pixels: new Uint8Array(64 * 64) } as Image, [0, 0, 10, 10], 'tips-right', SIZE)).toThrow(/Uint16Array for a 16-bit image/);
  });
});

describe('cropForModelAsync', () => {
  it('gives the synchronous crop to the bit, in place or from a copy (then the frame may change meanwhile)', async () => {
    const r = rng(5);
    for (const depth of [8, 16] as const) {
      const img = frame(333, 281, depth, depth + 7);
      for (const o of ORIENTATIONS) {
        for (let k = 0; k < 4; k++) {
          // Boxes inside, across the edges and past them (every sample clamped to the frame).
          const box: Box = [-80 + r() * 350, -80 + r() * 300, 5 + r() * 250, 10 + r() * 350];
          const want = cropForModel(img, box, o, SIZE);
          expectCloseFloats(await cropForModelAsync(img, box, o, SIZE, { inPlace: true }), want, 0, `in place, ${depth}-bit ${o} [${box.join(', ')}]`);
          // By default the frame is copied first: it may change meanwhile.
          const pending = cropForModelAsync(img, box, o, SIZE);
          const saved = img.pixels.slice();
          img.pixels.fill(0);
          const got = await pending;
          img.pixels.set(saved);
          expectCloseFloats(got, want, 0, `${depth}-bit ${o} [${box.join(', ')}]`);
        }
      }
    }
  });

  it('in place, keeps the frame alive when the caller drops it during the crop', () => {
    // Without the addon's reference, the collected frame's memory would be reused by the garbage
    // allocated below while the pool still reads it.
    const img = frame(1200, 900, 16, 3);
    const file = path.join(tmp, 'held.bin');
    writeFileSync(file, img.pixels);
    const box: Box = [100, 50, 900, 800];
    const cb = boxToCanonical(box, 1200, 900, 'tips-right');
    const a = canonicalAffine(1200, 900, 'tips-right');
    const args = `1200, 900, 16, Float64Array.of(${[a.ox, a.oy, a.exx, a.exy, a.eyx, a.eyy].join(', ')}), Float64Array.of(${cb.join(', ')}), 128, 256, ${samplesPerCell(cb, SIZE)}`;
    const script = `const m = require(${JSON.stringify(ADDON_FILE)}); const b = require('fs').readFileSync(${JSON.stringify(file)});
      const px = () => new Uint16Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.length));
      const want = new Float32Array(128 * 256);
      m.cropForModel(px(), ${args}, want);
      const runs = [];
      for (let i = 0; i < 8; i++) runs.push(m.cropForModelAsync(px(), ${args}, true));
      for (let i = 0; i < 8; i++) { globalThis.gc(); new Uint16Array(1200 * 900).fill(65535); }
      Promise.all(runs).then((r) => console.log(JSON.stringify(r.map((c) => Array.from(c).every((v, k) => v === want[k])))));`;
    const out = execFileSync(process.execPath, ['--expose-gc', '-e', script], { encoding: 'utf8' });
    expect(JSON.parse(out)).toEqual(Array(8).fill(true));
  });

});
