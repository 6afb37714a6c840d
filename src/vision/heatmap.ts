// Heatmaps -> pole positions. Two decoders: HRNet's argmax with the quarter offset toward the
// higher neighbour, and DARK (Zhang et al. 2020: Gaussian-smoothed log heatmap, one Newton step
// with the 2x2 Hessian, as mmpose's refine_keypoints_dark). Positions are continuous heatmap
// coordinates (cell centres at integers) and map back through the model contract's grid. Which
// cell a channel is decoded at is its argmax, or the peak sheetOrderCells picks for the whole stack.
import { boxToCanonical, fromCanonical } from '../frame/orientation.ts';
import type { Sheet } from '../inspect/recipe.ts';
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
  /** The cell each channel is decoded at (row-major index in its plane); the argmax without it. */
  cells?: Int32Array;
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
    const best = opts.cells ? opts.cells[c]! : argmax(hm);
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

function argmax(hm: Float32Array): number {
  let best = 0;
  for (let i = 1; i < hm.length; i++) if (hm[i]! > hm[best]!) best = i;
  return best;
}

export interface SheetOrderParams {
  /** Peaks (local maxima) a channel offers, strongest first. */
  candidates: number;
  /** A local maximum below this value is no candidate (the argmax always is). */
  floor: number;
  /** Neighbouring poles of one kind closer across the sheets than this share of their pitch pay
   *  `weight` per pitch short (overlapping or out of order). */
  minStep: number;
  weight: number;
  /** Tips far apart along the sheets may lean past each other: the rows of two neighbours may
   *  come this much closer per column between them without cost (tan 10 degrees, SPEC's lean). */
  lean: number;
  /** A confident channel's candidates lie at most this many pitches across the sheets from its argmax. */
  reach: number;
  /** Channels whose argmax reaches this value give the pitch. */
  confident: number;
}

export const DEFAULT_SHEET_ORDER_PARAMS: SheetOrderParams = { candidates: 4, floor: 0.05, minStep: 0.5, weight: 1, lean: 0.18, reach: 1.5, confident: 0.5 };

/**
 * The cell each channel is decoded at, chosen for the whole stack at once: the poles of one kind
 * (`kinds[c]`, anodes or cathodes) follow the recipe's order from top to bottom (canonical y,
 * heatmap rows), one pitch apart. Where the model hesitates between two neighbouring sheets of a
 * kind, a channel's heatmap holds two peaks of nearly the same height and its argmax may be the
 * neighbour's tip; its own is the other peak. Among each channel's strongest local maxima this
 * picks, per kind, the sequence that maximizes the sum of peak values minus `weight` for every
 * pitch by which two neighbours come closer than `minStep` pitches (overlapping or out of
 * order), times the lower of their two peaks: a weak channel (a missing sheet's) moves no
 * confident neighbour. A chain, solved exactly by dynamic programming. A confident channel's
 * candidates lie within `reach` pitches of its argmax: a slip is to a neighbouring sheet, not
 * across the stack. An anode and its cathode are not ordered against each other: tips that lean
 * by SPEC's 10 degrees cross over the overhang. The pitch is the median slope of the confident
 * argmaxes' rows over their order. A kind with fewer than 2 confident channels keeps its argmaxes.
 */
export function sheetOrderCells(
  data: Float32Array,
  shape: HeatmapShape,
  kinds: readonly Sheet[],
  p: SheetOrderParams = DEFAULT_SHEET_ORDER_PARAMS,
): Int32Array {
  const { k, width, height } = shape;
  if (kinds.length !== k) throw new RangeError(`sheetOrderCells: ${kinds.length} sheet kinds for ${k} channels`);
  const plane = width * height;
  // Each candidate placed with HRNet's quarter offset: at fine pitch neighbouring tips lie 1-2
  // rows apart, and whole rows would read many as overlapping.
  const cand: Peak[][] = [];
  for (let c = 0; c < k; c++) {
    const hm = data.subarray(c * plane, (c + 1) * plane);
    const cells = localMaxima(hm, width, height, p.floor);
    const top = argmax(hm);
    if (!cells.includes(top)) cells.push(top);
    cells.sort((a, b) => hm[b]! - hm[a]!);
    cand.push(
      cells.slice(0, p.candidates).map((cell) => {
        const [x, y] = quarterOffset(hm, width, height, cell % width, Math.floor(cell / width));
        return { cell, x, y, v: hm[cell]! };
      }),
    );
  }
  const chosen = cand.map((cs) => cs[0]!);
  for (const kind of new Set(kinds)) {
    const chain = [...kinds.keys()].filter((c) => kinds[c] === kind);
    const pitch = medianPitch(chain.map((c) => (chosen[c]!.v >= p.confident ? chosen[c]!.y : Number.NaN)));
    if (!(pitch > 0)) continue;
    // A confident channel slips to a neighbouring sheet at most: its peaks further across the stack
    // are no candidates. A weak channel's argmax says nothing about where its sheet is.
    for (const c of chain) {
      const top = chosen[c]!;
      if (top.v >= p.confident) cand[c] = cand[c]!.filter((q) => Math.abs(q.y - top.y) <= p.reach * pitch);
    }
    const penalty = (a: Peak, b: Peak) => {
      const across = b.y - a.y + p.lean * Math.abs(b.x - a.x);
      return Math.min(a.v, b.v) * p.weight * Math.max(0, p.minStep - across / pitch);
    };
    // cost[m]: the best score of the chain so far with its last channel at its m-th candidate;
    // from[n][m]: the candidate of the channel before that gives it.
    let cost = cand[chain[0]!]!.map((q) => q.v);
    const from: Int32Array[] = [];
    for (let n = 1; n < chain.length; n++) {
      const prev = cand[chain[n - 1]!]!;
      const back = new Int32Array(cand[chain[n]!]!.length);
      cost = cand[chain[n]!]!.map((here, m) => {
        let best = -Infinity;
        prev.forEach((before, q) => {
          const s = cost[q]! - penalty(before, here);
          if (s > best) [best, back[m]] = [s, q];
        });
        return best + here.v;
      });
      from.push(back);
    }
    let m = cost.indexOf(Math.max(...cost));
    for (let n = chain.length - 1; n >= 0; n--) {
      chosen[chain[n]!] = cand[chain[n]!]![m]!;
      if (n > 0) m = from[n - 1]![m]!;
    }
  }
  return Int32Array.from(chosen, (q) => q.cell);
}

/** A heatmap peak: its cell, its position with the quarter offset, its value. */
interface Peak {
  cell: number;
  x: number;
  y: number;
  v: number;
}

/** The median of (row j - row i) / (j - i) over the pairs of known rows 2 or more apart in order. */
function medianPitch(rows: number[]): number {
  const slopes: number[] = [];
  for (let i = 0; i < rows.length; i++) {
    for (let j = i + 2; j < rows.length; j++) {
      if (Number.isFinite(rows[i]!) && Number.isFinite(rows[j]!)) slopes.push((rows[j]! - rows[i]!) / (j - i));
    }
  }
  if (slopes.length === 0) return Number.NaN;
  slopes.sort((a, b) => a - b);
  return slopes[slopes.length >> 1]!;
}

/** Cells no 8-neighbour exceeds, at or above `floor`. */
function localMaxima(hm: Float32Array, width: number, height: number, floor: number): number[] {
  const out: number[] = [];
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const v = hm[y * width + x]!;
      if (!(v >= floor)) continue;
      let peak = true;
      for (let dy = -1; dy <= 1 && peak; dy++) {
        const yy = y + dy;
        if (yy < 0 || yy >= height) continue;
        for (let dx = -1; dx <= 1; dx++) {
          const xx = x + dx;
          if (xx >= 0 && xx < width && hm[yy * width + xx]! > v) {
            peak = false;
            break;
          }
        }
      }
      if (peak) out.push(y * width + x);
    }
  }
  return out;
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
