// Pole polish: a small CNN looks at each pole at the frame's full resolution and says how far
// its apex lies from where the heatmaps put it. The heatmap model sees the ROI resized to
// 128 x 256 (half resolution or less on most frames) and answers on a grid of 4 crop pixels;
// the polisher sees a 32 x 32 frame-pixel patch centred on the pole, in canonical orientation
// (tips +x), with a second channel saying anode (+1) or cathode (-1). It was trained on patches
// around labelled apexes displaced by up to 5 px (training/polish.py). The move is capped, so a
// pole stays on the sheet the heatmaps chose.
import { canonicalAffine, canonicalAffineArray } from '../frame/orientation.ts';
import { native } from '../native.ts';
import type { Sheet } from '../inspect/recipe.ts';
import type { Image, Orientation } from '../types.ts';
import { checkImage } from './image-args.ts';

/** The polisher's input: patch side (frame px) and the kind channel's values. */
export interface PolishInput {
  patch: number;
  anode: number;
  cathode: number;
}

/**
 * The polisher's input for the poles at `index`: n x 2 x patch x patch, float32. Channel 0 is the
 * frame sampled bilinearly (edges clamped) on a grid of frame pixels centred exactly on the pole,
 * rows across the sheets and columns along them (the addon samples it), then z-scored per patch
 * (the deviation floored at 1% of the patches' joint range, so a flat patch is not blown up into
 * noise). Channel 1 is the sheet's kind. The poles at `index` must be finite.
 */
export function polishPatches(
  img: Image,
  orientation: Orientation,
  x: ArrayLike<number>,
  y: ArrayLike<number>,
  sheets: readonly Sheet[],
  index: readonly number[],
  p: PolishInput,
): Float32Array {
  const { width, height, depth, pixels } = checkImage(img);
  const side = p.patch;
  const area = side * side;
  const out = new Float32Array(index.length * 2 * area);
  const px = Float64Array.from(index, (pole) => x[pole]!);
  const py = Float64Array.from(index, (pole) => y[pole]!);
  native.samplePatches(pixels, width, height, depth, canonicalAffineArray(width, height, orientation), px, py, side, 2 * area, out);
  // Each patch's mean, and the joint range the deviation's floor scales with.
  const means = new Float64Array(index.length);
  let lo = Infinity;
  let hi = -Infinity;
  for (let n = 0; n < index.length; n++) {
    const base = n * 2 * area;
    let sum = 0;
    for (let i = base; i < base + area; i++) {
      const v = out[i]!;
      sum += v;
      if (v < lo) lo = v;
      if (v > hi) hi = v;
    }
    means[n] = sum / area;
    out.fill(sheets[index[n]!] === 'A' ? p.anode : p.cathode, base + area, base + 2 * area);
  }
  const floor = 0.01 * Math.max(hi - lo, 1e-6);
  for (let n = 0; n < index.length; n++) {
    const base = n * 2 * area;
    const mean = means[n]!;
    let sq = 0;
    for (let i = base; i < base + area; i++) {
      const d = out[i]! - mean;
      sq += d * d;
    }
    const sd = Math.max(Math.sqrt(sq / area), floor);
    for (let i = base; i < base + area; i++) out[i] = (out[i]! - mean) / sd;
  }
  return out;
}

/**
 * The poles moved by the polisher's canonical offsets (du along the sheets, dv across, one pair
 * per entry of `index`), each move capped at `maxMove` frame px. Poles not in `index` stay.
 */
export function applyPolish(
  width: number,
  height: number,
  orientation: Orientation,
  x: Float64Array,
  y: Float64Array,
  index: readonly number[],
  offsets: Float32Array,
  maxMove: number,
): { x: Float64Array; y: Float64Array } {
  const { exx, exy, eyx, eyy } = canonicalAffine(width, height, orientation);
  const ox = x.slice();
  const oy = y.slice();
  index.forEach((pole, n) => {
    const du = offsets[2 * n]!;
    const dv = offsets[2 * n + 1]!;
    const len = Math.hypot(du, dv);
    const k = len > maxMove ? maxMove / len : 1;
    ox[pole] = x[pole]! + k * (du * exx + dv * eyx);
    oy[pole] = y[pole]! + k * (du * exy + dv * eyy);
  });
  return { x: ox, y: oy };
}
