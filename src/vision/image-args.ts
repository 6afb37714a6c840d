// The checks every addon entry point makes of an Image before C++ reads its pixels.
import { native } from '../native.ts';
import type { Image } from '../types.ts';

export const MAX_SIDE = 65536;

/** The image itself, once its depth, pixel array and size agree; a TypeError or RangeError naming what does not. */
export function checkImage(img: Image, minSide = 1): Image {
  if (typeof img !== 'object' || img === null) throw new TypeError('img must be an Image {width, height, depth, pixels}');
  const { width, height, depth, pixels } = img;
  if (depth !== 8 && depth !== 16) throw new RangeError(`img.depth must be 8 or 16, got ${String(depth)}`);
  const Want = depth === 8 ? Uint8Array : Uint16Array;
  if (!(pixels instanceof Want)) {
    throw new TypeError(`img.pixels must be a ${Want.name} for a ${depth}-bit image, got ${describe(pixels)}`);
  }
  if (pixels.buffer instanceof ArrayBuffer && native.isDetached(pixels.buffer)) {
    throw new TypeError('img.pixels: the buffer is detached (transferred or freed)');
  }
  side(width, 'img.width', minSide);
  side(height, 'img.height', minSide);
  if (pixels.length !== width * height) {
    throw new RangeError(`img.pixels has ${pixels.length} elements, expected width*height = ${width}*${height} = ${width * height}`);
  }
  return img;
}

function side(v: unknown, name: string, min: number): asserts v is number {
  if (typeof v !== 'number') throw new TypeError(`${name} must be a number, got ${describe(v)}`);
  if (!Number.isInteger(v) || v < min || v > MAX_SIDE) {
    const why = min === 1 ? ' (an empty image has no pixels to read)' : '';
    throw new RangeError(`${name} must be an integer from ${min} to ${MAX_SIDE}${why}, got ${v}`);
  }
}

export function describe(v: unknown): string {
  if (v === null) return 'null';
  if (typeof v === 'object') return (v as object).constructor?.name ?? 'object';
  return typeof v;
}

/** Off the event loop, the pixels are copied first unless the caller guarantees to leave them alone. */
export interface AsyncOptions {
  /** Read the pixels in place: the caller changes and transfers nothing until the promise settles. */
  inPlace?: boolean;
}
