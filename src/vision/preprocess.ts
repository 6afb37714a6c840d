// The model's input (brief "model contract"): the ROI in canonical orientation, resampled to a
// W x H grid by the mean of s x s bilinear samples per cell, then z-scored over the crop. Works
// on the raw 8- or 16-bit values, so no precision is lost to an 8-bit detour, and applies the
// orientation as a coordinate transform instead of copying the frame.
import { boxToCanonical, fromCanonical } from '../frame/orientation.ts';
import type { Box, Image, Orientation } from '../types.ts';

export interface InputSize {
  width: number;
  height: number;
}

/** Canonical -> frame as an affine map (the four orientations are all affine): f = o + xc * ex + yc * ey. */
export interface CanonicalAffine {
  ox: number;
  oy: number;
  exx: number;
  exy: number;
  eyx: number;
  eyy: number;
}

export function canonicalAffine(width: number, height: number, o: Orientation): CanonicalAffine {
  const [ox, oy] = fromCanonical(0, 0, width, height, o);
  const [ax, ay] = fromCanonical(1, 0, width, height, o);
  const [bx, by] = fromCanonical(0, 1, width, height, o);
  return { ox, oy, exx: ax - ox, exy: ay - oy, eyx: bx - ox, eyy: by - oy };
}

/** Samples per cell side: anti-aliasing when the ROI is larger than the input. */
export function samplesPerCell(canonicalBox: Box, size: InputSize): number {
  return Math.max(1, Math.ceil(Math.max(canonicalBox[2] / size.width, canonicalBox[3] / size.height)));
}

/**
 * The ROI `box` (frame pixels as delivered) of `img`, seen in canonical orientation `o`, as the
 * model's z-scored float32 input of size.height x size.width (row-major). Writes into `out` when given.
 */
export function cropForModel(img: Image, box: Box, o: Orientation, size: InputSize, out?: Float32Array): Float32Array {
  const { width: W, height: H } = size;
  const n = W * H;
  const dst = out ?? new Float32Array(n);
  if (dst.length < n) throw new RangeError(`cropForModel: output holds ${dst.length} values, needs ${n}`);
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
          // Clamping the point to the edge pixel centres = sampling with edge replication.
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
  zscore(dst, n, sum / n);
  return dst;
}

/** Per-crop z-score in place (population std, as numpy's default). */
function zscore(buf: Float32Array, n: number, mean: number): void {
  // A second pass for the variance: the one-pass form cancels badly on bright 16-bit crops.
  let ss = 0;
  for (let k = 0; k < n; k++) {
    const d = buf[k]! - mean;
    ss += d * d;
  }
  const std = Math.max(Math.sqrt(ss / n), 1e-6);
  const inv = 1 / std;
  for (let k = 0; k < n; k++) buf[k] = (buf[k]! - mean) * inv;
}

/** The flip test's batch of two: the model input, then the same input mirrored top <-> bottom. */
export function withMirrored(input: Float32Array, size: InputSize): Float32Array {
  const { width: W, height: H } = size;
  const n = W * H;
  const batch = new Float32Array(2 * n);
  batch.set(input.subarray(0, n));
  for (let v = 0; v < H; v++) batch.set(input.subarray(v * W, v * W + W), n + (H - 1 - v) * W);
  return batch;
}
