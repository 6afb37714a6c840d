// The detector chain after the scene: field of view and uneven illumination, PSF blur, photon
// and read noise, digitization to 16 bits or an 8-bit export with JPEG's lossy step.
import type { Image } from '../types.ts';
import { NORMAL_TABLE, type Rng } from './prng.ts';

export interface Field {
  /** Circular intensifier field: centre, radius, edge softness (px); null = flat panel, no circle. */
  circle: { cx: number; cy: number; r: number; soft: number; outside: number } | null;
  /** Brightness falls by this fraction at the circle's (or frame's) rim. */
  vignette: number;
  /** Heel effect: linear gain change across the frame along `heelAngle`. */
  heel: number;
  heelAngle: number;
  /** Per-row gain ripple (std), a slow drift of the readout. */
  rowRipple: number;
  /** Mottle: smooth random gain variation (std) over a coarse grid of `mottleCells` across the frame. */
  mottle: number;
  mottleCells: number;
}

/** Multiplies transmission by the illumination and field of view (frame coordinates). */
export function applyField(t: Float32Array, width: number, height: number, field: Field, rng: Rng): void {
  const cxF = (width - 1) / 2;
  const cyF = (height - 1) / 2;
  const norm = Math.max(width, height) / 2;
  const hx = Math.cos(field.heelAngle) / norm;
  const hy = Math.sin(field.heelAngle) / norm;
  const c = field.circle;
  const rimR = c ? c.r : Math.hypot(cxF, cyF);
  const rows = new Float32Array(height);
  for (let y = 0; y < height; y++) rows[y] = 1 + field.rowRipple * rng.normal();
  // Mottle: a coarse grid of gains, interpolated bilinearly.
  const gc = Math.max(2, field.mottleCells);
  const grid = new Float32Array((gc + 1) * (gc + 1));
  for (let i = 0; i < grid.length; i++) grid[i] = 1 + field.mottle * rng.normal();
  const cellW = (width - 1) / gc;
  const cellH = (height - 1) / gc;
  const invRim2 = 1 / (rimR * rimR);
  const ccx = c ? c.cx : cxF;
  const ccy = c ? c.cy : cyF;
  // Beyond these squared radii the circle's soft edge is fully in or fully out: no sqrt needed.
  const rIn2 = c ? Math.max(0, c.r - c.soft) ** 2 : Number.POSITIVE_INFINITY;
  const rOut2 = c ? (c.r + c.soft) ** 2 : Number.POSITIVE_INFINITY;
  for (let y = 0; y < height; y++) {
    let i = y * width;
    const dy2 = (y - ccy) * (y - ccy);
    const rowGain = rows[y]!;
    const gy = Math.min(gc - 1, Math.floor(y / cellH));
    const fy = y / cellH - gy;
    const g0 = gy * (gc + 1);
    const g1 = g0 + gc + 1;
    for (let x = 0; x < width; x++, i++) {
      const r2 = (x - ccx) * (x - ccx) + dy2;
      const gx = Math.min(gc - 1, Math.floor(x / cellW));
      const fx = x / cellW - gx;
      const mottle =
        (grid[g0 + gx]! * (1 - fx) + grid[g0 + gx + 1]! * fx) * (1 - fy) + (grid[g1 + gx]! * (1 - fx) + grid[g1 + gx + 1]! * fx) * fy;
      let g = rowGain * mottle * (1 + field.heel * ((x - cxF) * hx + (y - cyF) * hy)) * (1 - field.vignette * r2 * invRim2);
      if (c) {
        const inside = r2 <= rIn2 ? 1 : r2 >= rOut2 ? 0 : Math.min(1, Math.max(0, 0.5 - (Math.sqrt(r2) - c.r) / c.soft));
        g = g * inside + c.outside * (1 - inside);
      }
      t[i] = t[i]! * g;
    }
  }
}

/** Separable Gaussian blur (PSF sigma in px), edges clamped, in place; returns `src`. */
export function gaussianBlur(src: Float32Array, width: number, height: number, sigma: number): Float32Array {
  if (!(sigma > 0)) return src;
  const radius = Math.max(1, Math.ceil(sigma * 2.5));
  const taps = 2 * radius + 1;
  const k32 = new Float32Array(taps);
  let sum = 0;
  for (let i = -radius; i <= radius; i++) sum += k32[i + radius] = Math.exp(-(i * i) / (2 * sigma * sigma));
  for (let i = 0; i < taps; i++) k32[i] = k32[i]! / sum;
  const k = Float64Array.from(k32); // the same (float32) weights
  const { hRow, vRow } = unrolledRows(radius);
  const tmp = scratchFrame(width * height);
  // Horizontal: each pixel sums its taps in order in a double, stored as float32.
  for (let y = 0; y < height; y++) {
    const row = y * width;
    let x = 0;
    for (; x < Math.min(radius, width); x++) tmp[row + x] = clampedRowTaps(src, row, x, width, radius, k);
    if (x < width - radius) x = hRow(src, tmp, row, x, width - radius, k);
    for (; x < width - radius; x++) {
      let acc = 0;
      for (let j = 0; j < taps; j++) acc += k[j]! * src[row + x - radius + j]!;
      tmp[row + x] = acc;
    }
    for (; x < width; x++) tmp[row + x] = clampedRowTaps(src, row, x, width, radius, k);
  }
  // Vertical: the sum is rounded to float32 after every tap (it used to accumulate in the
  // float32 output row), taps in order; the vertical pass reads tmp only, so it overwrites src.
  const out = src;
  const offs = new Int32Array(taps);
  for (let y = 0; y < height; y++) {
    const row = y * width;
    let x = 0;
    if (y >= radius && y < height - radius) x = vRow(tmp, out, row, 0, width, k);
    for (let j = 0; j < taps; j++) {
      const yy = y + j - radius;
      offs[j] = (yy < 0 ? 0 : yy >= height ? height - 1 : yy) * width;
    }
    for (; x < width; x++) {
      let acc = 0;
      for (let j = 0; j < taps; j++) acc = Math.fround(acc + k[j]! * tmp[offs[j]! + x]!);
      out[row + x] = acc;
    }
  }
  return out;
}

function clampedRowTaps(src: Float32Array, row: number, x: number, width: number, radius: number, k: Float64Array): number {
  let acc = 0;
  for (let j = -radius; j <= radius; j++) {
    const xx = x + j < 0 ? 0 : x + j >= width ? width - 1 : x + j;
    acc += k[j + radius]! * src[row + xx]!;
  }
  return acc;
}

type RowPass = (src: Float32Array, dst: Float32Array, row: number, x0: number, x1: number, k: Float64Array) => number;

/**
 * The blur's inner loops for one radius, generated with the taps unrolled and 4 pixels
 * interleaved (4 independent sums keep the FPU busy; a loop over the taps waits on each add).
 * Each pixel's arithmetic is the generic loop's, in the same order. hRow blurs src's row along x
 * for x0 <= x < x1 (all taps inside the row) and vRow along y (all taps inside the frame; x0 = 0,
 * x1 is the width); both stop at a multiple of 4 pixels and return where they stopped, and the
 * generic loops finish the row. Wide kernels (beyond the PSFs drawn by default) stay generic.
 */
function unrolledRows(radius: number): { hRow: RowPass; vRow: RowPass } {
  const cached = UNROLLED.get(radius);
  if (cached) return cached;
  if (radius > 16) return { hRow: (_s, _d, _r, x0) => x0, vRow: (_s, _d, _r, x0) => x0 };
  const taps = 2 * radius + 1;
  const lanes = [0, 1, 2, 3];
  const weights = Array.from({ length: taps }, (_, j) => `const k${j} = k[${j}];`).join('\n');
  const loop = (step: string[]) => `${weights}
    let x = x0;
    for (; x + 4 <= x1; x += 4) {
      ${step.join('\n      ')}
    }
    return x;`;
  const h: string[] = [`const b = row + x - ${radius};`, ...lanes.map((p) => `let a${p} = 0;`)];
  const v: string[] = [`const b = row + x - ${radius} * x1;`, ...lanes.map((p) => `let a${p} = 0;`)];
  for (let j = 0; j < taps; j++) {
    for (const p of lanes) {
      h.push(`a${p} += k${j} * src[b + ${j + p}];`);
      v.push(`a${p} = Math.fround(a${p} + k${j} * src[b + ${j} * x1 + ${p}]);`);
    }
  }
  for (const p of lanes) {
    h.push(`dst[row + x + ${p}] = a${p};`);
    v.push(`dst[row + x + ${p}] = a${p};`);
  }
  const make = (body: string) => new Function('src', 'dst', 'row', 'x0', 'x1', 'k', body) as RowPass;
  const rows = { hRow: make(loop(h)), vRow: make(loop(v)) };
  UNROLLED.set(radius, rows);
  return rows;
}
const UNROLLED = new Map<number, { hRow: RowPass; vRow: RowPass }>();

/** One float32 scratch frame per thread, reused by every blur (its contents never outlive a call). */
let scratch = new Float32Array(0);
function scratchFrame(n: number): Float32Array {
  if (scratch.length < n) scratch = new Float32Array(n);
  return scratch.length === n ? scratch : scratch.subarray(0, n);
}

/**
 * Photon noise (Gaussian approximation of Poisson, exact Poisson below 30 counts) and read noise,
 * in place. `photons` is the mean count where transmission is 1; returns the counts.
 */
export function addNoise(t: Float32Array, photons: number, readNoise: number, rng: Rng): Float32Array {
  const out = t; // in place: frames are large and the garbage collector was a tenth of the cost
  // sfc32 stepped on locals (rng.u32() inlined: same draws, same order); the method calls and
  // field writes were most of this loop's cost.
  let [a, b, c, d] = rng.getState();
  const table = NORMAL_TABLE;
  for (let i = 0; i < t.length; i++) {
    const mean = Math.max(0, t[i]!) * photons;
    let n: number;
    let r: number;
    if (mean < 30) {
      // Knuth's method: exact, and cheap at these means.
      const l = Math.exp(-mean);
      let k = 0;
      r = (((a + b) | 0) + d) | 0;
      d = (d + 1) | 0;
      a = b ^ (b >>> 9);
      b = (c + (c << 3)) | 0;
      c = (((c << 21) | (c >>> 11)) + r) | 0;
      let p = (r >>> 0) / 4294967296;
      while (p > l) {
        k++;
        r = (((a + b) | 0) + d) | 0;
        d = (d + 1) | 0;
        a = b ^ (b >>> 9);
        b = (c + (c << 3)) | 0;
        c = (((c << 21) | (c >>> 11)) + r) | 0;
        p *= (r >>> 0) / 4294967296;
      }
      n = k;
    } else {
      r = (((a + b) | 0) + d) | 0;
      d = (d + 1) | 0;
      a = b ^ (b >>> 9);
      b = (c + (c << 3)) | 0;
      c = (((c << 21) | (c >>> 11)) + r) | 0;
      n = mean + Math.sqrt(mean) * table[r >>> 16]!;
    }
    r = (((a + b) | 0) + d) | 0;
    d = (d + 1) | 0;
    a = b ^ (b >>> 9);
    b = (c + (c << 3)) | 0;
    c = (((c << 21) | (c >>> 11)) + r) | 0;
    out[i] = n + readNoise * table[r >>> 16]!;
  }
  rng.setState([a, b, c, d]);
  return out;
}

export interface Export {
  depth: 8 | 16;
  /** 16-bit: counts -> DN = offset + gain * counts, clipped to maxDn. */
  offset: number;
  gain: number;
  maxDn: number;
  /** 8-bit: level = 255 * ((counts / photons - black) / (white - black)) ^ gamma. */
  black: number;
  white: number;
  gamma: number;
  /** 8-bit: some exports store the negative (attenuating = bright). */
  invert: boolean;
  /** JPEG quality 1..100 of the 8-bit export, 0 for none. */
  jpegQuality: number;
  /** Dead (0) and hot (max) pixels. */
  dead: number;
  hot: number;
}

export function digitize(counts: Float32Array, width: number, height: number, photons: number, ex: Export, rng: Rng): Image {
  const n = width * height;
  let img: Image;
  if (ex.depth === 16) {
    const px = new Uint16Array(n);
    for (let i = 0; i < n; i++) {
      const dn = Math.round(ex.offset + ex.gain * counts[i]!);
      px[i] = dn < 0 ? 0 : dn > ex.maxDn ? ex.maxDn : dn;
    }
    img = { width, height, depth: 16, pixels: px };
  } else {
    const px = new Uint8Array(n);
    // The tone curve through a table: 8192 steps are finer than the 256 output levels.
    const steps = 8192;
    const curve = new Uint8Array(steps + 1);
    for (let k = 0; k <= steps; k++) curve[k] = Math.round(Math.pow(k / steps, ex.gamma) * 255);
    const scale = steps / (photons * (ex.white - ex.black));
    const off = (steps * ex.black) / (ex.white - ex.black);
    if (ex.invert) for (let k = 0; k <= steps; k++) curve[k] = 255 - curve[k]!;
    for (let i = 0; i < n; i++) {
      const l = Math.round(counts[i]! * scale - off);
      px[i] = curve[l <= 0 ? 0 : l >= steps ? steps : l]!;
    }
    img = { width, height, depth: 8, pixels: px };
  }
  const max = img.depth === 16 ? ex.maxDn : 255;
  for (let i = 0; i < ex.dead; i++) img.pixels[rng.int(0, n - 1)] = 0;
  for (let i = 0; i < ex.hot; i++) img.pixels[rng.int(0, n - 1)] = max;
  if (img.depth === 8 && ex.jpegQuality > 0) jpegRoundTrip(img.pixels as Uint8Array, width, height, ex.jpegQuality);
  return img;
}

// JPEG's lossy step for a grey frame: 8x8 DCT, the standard luminance table scaled to the
// quality as libjpeg does, quantize, dequantize, inverse DCT. The rest of JPEG is lossless.
const LUMA_Q = [
  16, 11, 10, 16, 24, 40, 51, 61, 12, 12, 14, 19, 26, 58, 60, 55, 14, 13, 16, 24, 40, 57, 69, 56, 14, 17, 22, 29, 51, 87, 80,
  62, 18, 22, 37, 56, 68, 109, 103, 77, 24, 35, 55, 64, 81, 104, 113, 92, 49, 64, 78, 87, 103, 121, 120, 101, 72, 92, 95, 98,
  112, 100, 103, 99,
];

const DCT = (() => {
  const m = new Float64Array(64);
  for (let k = 0; k < 8; k++) {
    const a = k === 0 ? Math.SQRT1_2 : 1;
    for (let n = 0; n < 8; n++) m[k * 8 + n] = 0.5 * a * Math.cos(((2 * n + 1) * k * Math.PI) / 16);
  }
  return m;
})();

/**
 * 8-point DCT-II of v[o], v[o + st], ... into out (same layout), using the basis symmetry
 * C[k][7-n] = (-1)^k C[k][n]: even k from pair sums, odd k from pair differences.
 */
function dct8(v: Float64Array, o: number, st: number, out: Float64Array): void {
  const s0 = v[o]! + v[o + 7 * st]!;
  const s1 = v[o + st]! + v[o + 6 * st]!;
  const s2 = v[o + 2 * st]! + v[o + 5 * st]!;
  const s3 = v[o + 3 * st]! + v[o + 4 * st]!;
  const d0 = v[o]! - v[o + 7 * st]!;
  const d1 = v[o + st]! - v[o + 6 * st]!;
  const d2 = v[o + 2 * st]! - v[o + 5 * st]!;
  const d3 = v[o + 3 * st]! - v[o + 4 * st]!;
  for (let k = 0; k < 8; k += 2) {
    const c = k * 8;
    out[o + k * st] = DCT[c]! * s0 + DCT[c + 1]! * s1 + DCT[c + 2]! * s2 + DCT[c + 3]! * s3;
    const c1 = c + 8;
    out[o + (k + 1) * st] = DCT[c1]! * d0 + DCT[c1 + 1]! * d1 + DCT[c1 + 2]! * d2 + DCT[c1 + 3]! * d3;
  }
}

/** Inverse of dct8 (DCT-III), the same symmetry: x[n] = E[n] + O[n], x[7-n] = E[n] - O[n]. */
function idct8(v: Float64Array, o: number, st: number, out: Float64Array): void {
  const x0 = v[o]!;
  const x1 = v[o + st]!;
  const x2 = v[o + 2 * st]!;
  const x3 = v[o + 3 * st]!;
  const x4 = v[o + 4 * st]!;
  const x5 = v[o + 5 * st]!;
  const x6 = v[o + 6 * st]!;
  const x7 = v[o + 7 * st]!;
  for (let n = 0; n < 4; n++) {
    const e = DCT[n]! * x0 + DCT[16 + n]! * x2 + DCT[32 + n]! * x4 + DCT[48 + n]! * x6;
    const od = DCT[8 + n]! * x1 + DCT[24 + n]! * x3 + DCT[40 + n]! * x5 + DCT[56 + n]! * x7;
    out[o + n * st] = e + od;
    out[o + (7 - n) * st] = e - od;
  }
}

export function jpegRoundTrip(px: Uint8Array, width: number, height: number, quality: number): void {
  const q = Math.max(1, Math.min(100, Math.round(quality)));
  const scale = q < 50 ? 5000 / q : 200 - 2 * q;
  const table = new Float64Array(64);
  for (let i = 0; i < 64; i++) table[i] = Math.min(255, Math.max(1, Math.floor((LUMA_Q[i]! * scale + 50) / 100)));
  const blk = new Float64Array(64);
  const tmp = new Float64Array(64);
  for (let by = 0; by < height; by += 8) {
    for (let bx = 0; bx < width; bx += 8) {
      // Edge blocks are padded by repeating the last row/column, as encoders do.
      for (let y = 0; y < 8; y++) {
        const yy = Math.min(by + y, height - 1) * width;
        for (let x = 0; x < 8; x++) blk[y * 8 + x] = px[yy + Math.min(bx + x, width - 1)]! - 128;
      }
      for (let y = 0; y < 8; y++) dct8(blk, y * 8, 1, tmp); // rows
      for (let x = 0; x < 8; x++) dct8(tmp, x, 8, blk); // columns
      for (let i = 0; i < 64; i++) blk[i] = Math.round(blk[i]! / table[i]!) * table[i]!;
      for (let x = 0; x < 8; x++) idct8(blk, x, 8, tmp);
      for (let y = 0; y < 8; y++) idct8(tmp, y * 8, 1, blk);
      for (let y = 0; y < 8 && by + y < height; y++) {
        const yy = (by + y) * width;
        for (let x = 0; x < 8 && bx + x < width; x++) {
          const v = Math.round(blk[y * 8 + x]! + 128);
          px[yy + bx + x] = v < 0 ? 0 : v > 255 ? 255 : v;
        }
      }
    }
  }
}

/**
 * Motion blur or a ghost image: the sum of weighted copies of `t` shifted by offset_i * (dx, dy)
 * (bilinear, edges clamped). Symmetric offsets leave edges where they were; returns a new array.
 */
export function smear(t: Float32Array, width: number, height: number, dx: number, dy: number, taps: readonly { offset: number; weight: number }[]): Float32Array {
  const out = new Float32Array(width * height);
  for (const { offset, weight } of taps) {
    const sx = offset * dx;
    const sy = offset * dy;
    const ix = Math.floor(sx);
    const iy = Math.floor(sy);
    const fx = sx - ix;
    const fy = sy - iy;
    const w00 = weight * (1 - fx) * (1 - fy);
    const w10 = weight * fx * (1 - fy);
    const w01 = weight * (1 - fx) * fy;
    const w11 = weight * fx * fy;
    for (let y = 0; y < height; y++) {
      const y0 = Math.min(height - 1, Math.max(0, y + iy)) * width;
      const y1 = Math.min(height - 1, Math.max(0, y + iy + 1)) * width;
      const row = y * width;
      for (let x = 0; x < width; x++) {
        const x0 = Math.min(width - 1, Math.max(0, x + ix));
        const x1 = Math.min(width - 1, Math.max(0, x + ix + 1));
        out[row + x] = out[row + x]! + w00 * t[y0 + x0]! + w10 * t[y0 + x1]! + w01 * t[y1 + x0]! + w11 * t[y1 + x1]!;
      }
    }
  }
  return out;
}
