// Heatmaps -> pole positions. Two decoders: HRNet's argmax with the quarter offset toward the
// higher neighbour, and DARK (Zhang et al. 2020: Gaussian-smoothed log heatmap, one Newton step
// with the 2x2 Hessian, as mmpose's refine_keypoints_dark). Positions are continuous heatmap
// coordinates (cell centres at integers) and map back through the model contract's grid.
import { boxToCanonical, fromCanonical } from '../frame/orientation.ts';
import type { Box, Orientation } from '../types.ts';

export type DecodeMethod = 'argmax' | 'dark';

export interface HeatmapShape {
  /** Keypoint channels. */
  k: number;
  width: number;
  height: number;
}

export interface DecodedPeaks {
  /** Continuous heatmap coordinates; cell (i, j) has its centre at (i, j). */
  hx: Float64Array;
  hy: Float64Array;
  /** Heatmap peak value per keypoint. */
  conf: Float64Array;
}

export interface DecodeOptions {
  method: DecodeMethod;
  /** Training target sigma in heatmap cells: DARK smooths with the same kernel. */
  sigma: number;
}

/** Decodes every channel of one sample's heatmaps (K x height x width, row-major). */
export function decodeHeatmaps(data: Float32Array, shape: HeatmapShape, opts: DecodeOptions): DecodedPeaks {
  const { k, width, height } = shape;
  const plane = width * height;
  if (data.length < k * plane) throw new RangeError(`decodeHeatmaps: ${data.length} values for ${k}x${height}x${width}`);
  const hx = new Float64Array(k);
  const hy = new Float64Array(k);
  const conf = new Float64Array(k);
  const kernel = gaussianKernel(opts.sigma, DARK_KERNEL_RADIUS);
  for (let c = 0; c < k; c++) {
    const hm = data.subarray(c * plane, (c + 1) * plane);
    let best = 0;
    for (let i = 1; i < plane; i++) if (hm[i]! > hm[best]!) best = i;
    const ix = best % width;
    const iy = (best - ix) / width;
    conf[c] = hm[best]!;
    const [qx, qy] = quarterOffset(hm, width, height, ix, iy);
    hx[c] = qx;
    hy[c] = qy;
    if (opts.method === 'dark') {
      const d = darkStep(hm, width, height, ix, iy, kernel);
      if (d) {
        hx[c] = d[0];
        hy[c] = d[1];
      }
    }
  }
  return { hx, hy, conf };
}

/** HRNet's reference decoding: the argmax moved 0.25 cell toward the higher neighbour on each axis. */
export function quarterOffset(hm: Float32Array, width: number, height: number, ix: number, iy: number): [number, number] {
  let x = ix;
  let y = iy;
  const at = (u: number, v: number) => hm[v * width + u]!;
  if (ix > 0 && ix < width - 1) x += 0.25 * Math.sign(at(ix + 1, iy) - at(ix - 1, iy));
  if (iy > 0 && iy < height - 1) y += 0.25 * Math.sign(at(ix, iy + 1) - at(ix, iy - 1));
  return [x, y];
}

/**
 * DARK's smoothing reaches one cell each way. Neighbouring sheets' poles lie 1.8-3.5 heatmap cells
 * apart, and each channel answers weakly at them too: a kernel of ceil(3 sigma) = 5 cells mixed
 * those answers in, which pulled the outermost poles (neighbours on one side only) 0.13-0.16 half
 * pitch into the stack and cost PCK@0.5 0.951 -> 0.894 on the validation set (docs/inference.md).
 */
export const DARK_KERNEL_RADIUS = 1;

/** Normalized 1-D Gaussian taps, radius ceil(3 sigma) unless given. */
export function gaussianKernel(sigma: number, radius = Math.ceil(3 * sigma)): Float64Array {
  const r = Math.max(1, radius);
  const taps = new Float64Array(2 * r + 1);
  let sum = 0;
  for (let i = -r; i <= r; i++) sum += taps[i + r] = Math.exp((-i * i) / (2 * sigma * sigma));
  for (let i = 0; i < taps.length; i++) taps[i]! /= sum;
  return taps;
}

/**
 * One DARK Newton step from the integer argmax. The smoothing is evaluated only at the 13 cells
 * the derivatives need (edge-replicated, as a full blur would give there). Returns null when the
 * log heatmap is not a maximum there (Hessian not negative definite) or the step leaves the cell's
 * neighbourhood: then the argmax decoding stands.
 */
export function darkStep(
  hm: Float32Array,
  width: number,
  height: number,
  ix: number,
  iy: number,
  kernel: Float64Array,
): [number, number] | null {
  const r = (kernel.length - 1) >> 1;
  const L = (dx: number, dy: number): number => {
    let acc = 0;
    for (let j = -r; j <= r; j++) {
      const v = clamp(iy + dy + j, height - 1);
      const row = v * width;
      let racc = 0;
      for (let i = -r; i <= r; i++) racc += kernel[i + r]! * hm[row + clamp(ix + dx + i, width - 1)]!;
      acc += kernel[j + r]! * racc;
    }
    return Math.log(Math.max(acc, 1e-10));
  };
  const c = L(0, 0);
  const gx = 0.5 * (L(1, 0) - L(-1, 0));
  const gy = 0.5 * (L(0, 1) - L(0, -1));
  const hxx = 0.25 * (L(2, 0) - 2 * c + L(-2, 0));
  const hyy = 0.25 * (L(0, 2) - 2 * c + L(0, -2));
  const hxy = 0.25 * (L(1, 1) - L(-1, 1) - L(1, -1) + L(-1, -1));
  const det = hxx * hyy - hxy * hxy;
  if (!(hxx < 0 && det > 1e-12)) return null;
  const ox = -(hyy * gx - hxy * gy) / det;
  const oy = -(-hxy * gx + hxx * gy) / det;
  if (!(Math.abs(ox) <= 1 && Math.abs(oy) <= 1)) return null;
  return [ix + ox, iy + oy];
}

function clamp(i: number, max: number): number {
  return i < 0 ? 0 : i > max ? max : i;
}

/** Continuous heatmap position -> canonical point (model contract: cell centres at (i + 0.5) * bw / width). */
export function heatmapToCanonical(hx: number, hy: number, canonicalBox: Box, shape: { width: number; height: number }): [number, number] {
  const [bx, by, bw, bh] = canonicalBox;
  return [bx + ((hx + 0.5) * bw) / shape.width, by + ((hy + 0.5) * bh) / shape.height];
}

/** Canonical point -> continuous heatmap position; the inverse of heatmapToCanonical. */
export function canonicalToHeatmap(xc: number, yc: number, canonicalBox: Box, shape: { width: number; height: number }): [number, number] {
  const [bx, by, bw, bh] = canonicalBox;
  return [((xc - bx) * shape.width) / bw - 0.5, ((yc - by) * shape.height) / bh - 0.5];
}

/** Continuous heatmap position -> frame pixels as delivered, for a ROI `box` given in frame pixels. */
export function heatmapToFrame(
  hx: number,
  hy: number,
  box: Box,
  o: Orientation,
  frame: { width: number; height: number },
  shape: { width: number; height: number },
): [number, number] {
  const cb = boxToCanonical(box, frame.width, frame.height, o);
  const [xc, yc] = heatmapToCanonical(hx, hy, cb, shape);
  return fromCanonical(xc, yc, frame.width, frame.height, o);
}

/**
 * Flip test for the top <-> bottom mirror the model was trained with: `mirrored` holds the
 * heatmaps of the vertically mirrored crop, whose channel K-1-c is pole c (an A C ... A stack
 * reads the same both ways) and whose row H-1-j is row j (cell centres mirror exactly under the
 * model contract's grid). Returns the mean of both views, K x height x width.
 */
export function mergeMirrored(heatmaps: Float32Array, mirrored: Float32Array, shape: HeatmapShape): Float32Array {
  const { k, width, height } = shape;
  const plane = width * height;
  if (heatmaps.length < k * plane || mirrored.length < k * plane) {
    throw new RangeError(`mergeMirrored: ${heatmaps.length} and ${mirrored.length} values for ${k}x${height}x${width}`);
  }
  const out = new Float32Array(k * plane);
  for (let c = 0; c < k; c++) {
    const src = (k - 1 - c) * plane;
    for (let j = 0; j < height; j++) {
      const row = c * plane + j * width;
      const mrow = src + (height - 1 - j) * width;
      for (let i = 0; i < width; i++) out[row + i] = 0.5 * (heatmaps[row + i]! + mirrored[mrow + i]!);
    }
  }
  return out;
}
