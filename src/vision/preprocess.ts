// The model's input (brief "model contract"): the ROI in canonical orientation, resampled to a
// W x H grid by the mean of s x s bilinear samples per cell, then z-scored over the crop. Works
// on the raw 8- or 16-bit values, so no precision is lost to an 8-bit detour, and applies the
// orientation as a coordinate transform instead of copying the frame. The addon does the pixels.
import { boxToCanonical, canonicalAffineArray } from '../frame/orientation.ts';
import { native, type CropArgs } from '../native.ts';
import type { Box, Image, Orientation } from '../types.ts';
import { checkImage, type AsyncOptions } from './image-args.ts';

export interface InputSize {
  width: number;
  height: number;
}

/** Samples per cell side: anti-aliasing when the ROI is larger than the input. */
export function samplesPerCell(canonicalBox: Box, size: InputSize): number {
  return Math.max(1, Math.ceil(Math.max(canonicalBox[2] / size.width, canonicalBox[3] / size.height)));
}

/**
 * The ROI `box` (frame pixels as delivered) of `img`, seen in canonical orientation `o`, as the
 * model's z-scored float32 input of size.height x size.width (row-major). Writes into `out` when
 * given. The pixel loop runs in the addon (native/crop.cc), on this thread.
 */
export function cropForModel(img: Image, box: Box, o: Orientation, size: InputSize, out?: Float32Array): Float32Array {
  const args = cropArgs(img, box, o, size);
  const n = size.width * size.height;
  const dst = out ?? new Float32Array(n);
  if (dst.length < n) throw new RangeError(`cropForModel: output holds ${dst.length} values, needs ${n}`);
  native.cropForModel(...args, dst);
  return dst;
}

/** cropForModel off the event loop, on the libuv pool (inPlace: see AsyncOptions). */
export function cropForModelAsync(img: Image, box: Box, o: Orientation, size: InputSize, how: AsyncOptions = {}): Promise<Float32Array> {
  return native.cropForModelAsync(...cropArgs(img, box, o, size), how.inPlace === true);
}

function cropArgs(img: Image, box: Box, o: Orientation, size: InputSize): CropArgs {
  const { width, height, depth, pixels } = checkImage(img);
  const { width: W, height: H } = size;
  if (!Number.isInteger(W) || !Number.isInteger(H) || W < 1 || H < 1 || W > 4096 || H > 4096) {
    throw new RangeError(`cropForModel: input size must be whole numbers from 1 to 4096, got ${W}x${H}`);
  }
  if (!box.every(Number.isFinite) || !(box[2] > 0 && box[3] > 0)) {
    throw new RangeError(`cropForModel: box must be finite with a positive size, got [${box.join(', ')}]`);
  }
  const cb = boxToCanonical(box, width, height, o);
  return [pixels, width, height, depth, canonicalAffineArray(width, height, o), new Float64Array(cb), W, H, samplesPerCell(cb, size)];
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
