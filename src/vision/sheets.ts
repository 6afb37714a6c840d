// The ROI stage's pixel loops, run by the addon (native/sheets.cc): how much a canonical window
// looks like horizontal sheets, the sums its row profile is made of, the frame's grey range its
// thresholds scale with, and the frame at half size for the search's second scale.
import { canonicalAffineArray } from '../frame/orientation.ts';
import { native } from '../native.ts';
import type { Image, Orientation } from '../types.ts';
import { checkImage } from './image-args.ts';

/** A window in canonical coordinates (tips to +x), inclusive. */
export interface CanonicalWindow {
  x0: number;
  x1: number;
  y0: number;
  y1: number;
}

/**
 * Mean of |dI/dy| - |dI/dx| (over 4 px) in a canonical window, sampled on an up to 64 x 64 grid.
 * Each derivative is taken on the frame averaged over `smooth` px across it (dI/dy on a
 * horizontal run, dI/dx on a vertical one): a horizontal sheet keeps its full contrast in its
 * run while pixel noise, which otherwise dominates both terms, shrinks by sqrt(smooth). Runs
 * leaving the frame read its edge pixels.
 */
export function stripeMean(img: Image, orientation: Orientation, w: CanonicalWindow, smooth: number): number {
  const { width: W, height: H, depth, pixels } = checkImage(img);
  for (const k of ['x0', 'x1', 'y0', 'y1'] as const) {
    if (!Number.isFinite(w[k])) throw new RangeError(`window.${k} must be a finite number, got ${w[k]}`);
  }
  if (!Number.isInteger(smooth) || smooth < 1 || smooth > 255 || smooth % 2 === 0) {
    throw new RangeError(`smooth must be an odd integer from 1 to 255, got ${smooth}`);
  }
  return native.stripeMean(pixels, W, H, depth, canonicalAffineArray(W, H, orientation), new Float64Array([w.x0, w.x1, w.y0, w.y1]), smooth);
}

/**
 * Sums of the frame rectangle from (x0, y0) to (x1, y1), inclusive and inside the frame: one per
 * row when byRow, else one per column. Exact (integers).
 */
export function rectSums(img: Image, x0: number, y0: number, x1: number, y1: number, byRow: boolean): Float64Array {
  const { width, height, depth, pixels } = checkImage(img);
  const inside = (v: number, lo: number, hi: number) => Number.isInteger(v) && v >= lo && v <= hi;
  if (!inside(x0, 0, width - 1) || !inside(x1, x0, width - 1) || !inside(y0, 0, height - 1) || !inside(y1, y0, height - 1)) {
    throw new RangeError(`rectangle (${x0}, ${y0})-(${x1}, ${y1}) must be integers ordered and inside the ${width}x${height} frame`);
  }
  return native.rectSums(pixels, width, height, depth, x0, y0, x1, y1, byRow);
}

/**
 * The 0.5th and 99.5th percentile of every step-th sample (a counting sort): the values at sorted
 * positions floor(q * count), as sorting the samples would give.
 */
export function sampledRange(img: Image, step: number): [number, number] {
  const { depth, pixels } = checkImage(img);
  if (!Number.isInteger(step) || step < 1) throw new RangeError(`step must be a positive integer, got ${step}`);
  return native.greyRange(pixels, depth, step);
}

/** The frame at half size: rounded means of 2 x 2 pixels (an odd last row or column is dropped). */
export function halfSize(img: Image): Image {
  const { width, height, depth, pixels } = checkImage(img, 2);
  return { width: width >> 1, height: height >> 1, depth, pixels: native.halfSize(pixels, width, height, depth) };
}
