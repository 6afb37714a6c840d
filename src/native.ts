// Loads the compiled addon (build/Release/xpole_native.node, built by `npm install` / `npm run build`).
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Corners } from './types.ts';


type DetectFn<R> = (
  pixels: Uint8Array | Uint16Array,
  width: number,
  height: number,
  stride: number,
  depth: 8 | 16,
  threshold: number,
  maxCorners: number,
  border: number,
  threads: number,
  describe: boolean,
) => R;

/** The model crop's arguments: the frame, its canonical map and box, the output grid and samples per cell. */
export type CropArgs = [
  pixels: Uint8Array | Uint16Array,
  width: number,
  height: number,
  depth: 8 | 16,
  affine: Float64Array,
  box: Float64Array,
  outW: number,
  outH: number,
  samples: number,
];

export interface NativeAddon {
  detect: DetectFn<Corners>;
  /** detect on the libuv pool, over a copy of the pixels; with inPlace over the pixels themselves
   *  (the caller leaves them unchanged, and does not transfer them, until it settles). */
  detectAsync: (...args: [...Parameters<DetectFn<unknown>>, inPlace?: boolean]) => Promise<Corners>;
  /** Pixels of a non-interlaced grey PNG from its IDAT chunks ([offset, length] pairs in png),
   *  decoded into `out` when given (at least greyPngWorkBytes long, untouched until it settles).
   *  inPlace: png is read by the pool thread instead of copied (untouched until it settles).
   *  Only when the addon was built with libdeflate (Debian: libdeflate-dev); else sharp decodes. */
  decodeGreyPngAsync?: (png: Uint8Array, idat: Uint32Array, width: number, height: number, depth: 8 | 16, out?: ArrayBuffer, inPlace?: boolean) => Promise<Uint8Array | Uint16Array>;
  /** The ROI stage's stripe score over a canonical window: affine = [ox, oy, exx, exy, eyx, eyy], window = [x0, x1, y0, y1]. */
  stripeMean(pixels: Uint8Array | Uint16Array, width: number, height: number, depth: 8 | 16, affine: Float64Array, window: Float64Array, smooth: number): number;
  /** The model's input (z-scored crop) into out: affine = [ox, oy, exx, exy, eyx, eyy], box = canonical [bx, by, bw, bh]. */
  cropForModel(...args: [...CropArgs, out: Float32Array]): void;
  /** cropForModel on the libuv pool, over a copy of the frame (inPlace: the frame itself, untouched until it settles); a new Float32Array. */
  cropForModelAsync(...args: [...CropArgs, inPlace?: boolean]): Promise<Float32Array>;
  /** The polisher's side x side patches centred on the points (x[k], y[k]), bilinear and edge-clamped, patch k from out[k * stride] on. */
  samplePatches(pixels: Uint8Array | Uint16Array, width: number, height: number, depth: 8 | 16, affine: Float64Array, x: Float64Array, y: Float64Array, side: number, stride: number, out: Float32Array): void;
  /** Sums of the frame rectangle [x0, x1] x [y0, y1], per row (byRow) or per column. */
  rectSums(pixels: Uint8Array | Uint16Array, width: number, height: number, depth: 8 | 16, x0: number, y0: number, x1: number, y1: number, byRow: boolean): Float64Array;
  /** The 0.5th and 99.5th percentile of every step-th sample. */
  greyRange(pixels: Uint8Array | Uint16Array, depth: 8 | 16, step: number): [number, number];
  /** The 2 x 2 binned frame, a new array of the same kind. */
  halfSize<T extends Uint8Array | Uint16Array>(pixels: T, width: number, height: number, depth: 8 | 16): T;
  notify(socket: string, state: string): void;
  isDetached(buffer: ArrayBuffer): boolean;
}

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
/** The addon file this process loads: XPOLE_NATIVE (the sanitizer build, say) or the package's build. */
export const ADDON_FILE = process.env.XPOLE_NATIVE ?? path.join(root, 'build', 'Release', 'xpole_native.node');

function load(): NativeAddon {
  try {
    return createRequire(import.meta.url)(ADDON_FILE) as NativeAddon;
  } catch (err) {
    throw new Error(`cannot load the native addon ${ADDON_FILE} (build it with 'npm run build'): ${(err as Error).message}`);
  }
}

export const native: NativeAddon = load();
