// Pole polish: a small CNN looks at each pole at the frame's full resolution and says how far
// its apex lies from where the heatmaps put it. The heatmap model sees the ROI resized to
// 128 x 256 (half resolution or less on most frames) and answers on a grid of 4 crop pixels;
// the polisher sees a 32 x 32 frame-pixel patch centred on the pole, in canonical orientation
// (tips +x), with a second channel saying anode (+1) or cathode (-1). It was trained on patches
// around labelled apexes displaced by up to 5 px (training/polish.py). The move is capped, so a
// pole stays on the sheet the heatmaps chose.
import { canonicalAffine } from '../frame/orientation.ts';
import type { Sheet } from '../inspect/recipe.ts';
import type { Image, Orientation } from '../types.ts';
import { sampleBilinear } from './sample.ts';

/** The polisher's input: patch side (frame px) and the kind channel's values. */
export interface PolishInput {
  patch: number;
  anode: number;
  cathode: number;
}

/**
 * The polisher's input for the poles at `index`: n x 2 x patch x patch, float32. Channel 0 is the
 * frame sampled bilinearly (edges clamped) on a grid of frame pixels centred exactly on the pole,
 * rows across the sheets and columns along them, then z-scored per patch (the deviation floored
 * at 1% of the patches' joint range, so a flat patch is not blown up into noise). Channel 1 is
 * the sheet's kind.
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
  const { exx, exy, eyx, eyy } = canonicalAffine(img.width, img.height, orientation);
  const side = p.patch;
  const area = side * side;
  const out = new Float32Array(index.length * 2 * area);
  const half = (side - 1) / 2;
  let lo = Infinity;
  let hi = -Infinity;
  index.forEach((pole, n) => {
    const base = n * 2 * area;
    for (let r = 0; r < side; r++) {
      const v = r - half;
      for (let c = 0; c < side; c++) {
        const u = c - half;
        const s = sampleBilinear(img, x[pole]! + u * exx + v * eyx, y[pole]! + u * exy + v * eyy);
        out[base + r * side + c] = s;
        if (s < lo) lo = s;
        if (s > hi) hi = s;
      }
    }
    out.fill(sheets[pole] === 'A' ? p.anode : p.cathode, base + area, base + 2 * area);
  });
  const floor = 0.01 * Math.max(hi - lo, 1e-6);
  for (let n = 0; n < index.length; n++) {
    const base = n * 2 * area;
    let sum = 0;
    for (let i = 0; i < area; i++) sum += out[base + i]!;
    const mean = sum / area;
    let sq = 0;
    for (let i = 0; i < area; i++) sq += (out[base + i]! - mean) ** 2;
    const sd = Math.max(Math.sqrt(sq / area), floor);
    for (let i = 0; i < area; i++) out[base + i] = (out[base + i]! - mean) / sd;
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
