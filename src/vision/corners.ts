// oFAST corners (FAST-9 + ORB's Harris ranking and intensity-centroid angle) through the native addon.
import { native } from '../native.ts';
import type { Corners, Image } from '../types.ts';
import { checkImage, describe, MAX_SIDE, type AsyncOptions } from './image-args.ts';

export interface CornerOptions {
  /** FAST threshold in the image's own units: 0..255 for 8-bit, 0..65535 for 16-bit frames. */
  threshold: number;
  /** Keep the N best by Harris response as ORB does (ties at the N-th are kept), strongest first;
   *  absent: all corners, in row-major order. */
  maxCorners?: number;
  /** Drop corners closer than this many pixels to an edge (ORB's edgeThreshold); default 0 (FAST's own 3). */
  border?: number;
  /** Row bands detected in parallel; default 1 (the daemon already keeps two frames in flight). */
  threads?: number;
}

/** Default FAST threshold for 8-bit frames; 16-bit frames use it times 257 (the same contrast, full range). */
export const DEFAULT_THRESHOLD_8 = 20;

export function defaultThreshold(depth: 8 | 16): number {
  return depth === 8 ? DEFAULT_THRESHOLD_8 : DEFAULT_THRESHOLD_8 * 257;
}

/** Row bands are cheap; more than the cores just interleave. */
const MAX_THREADS = 64;

/** Every FAST-9 corner after non-maximum suppression (or the maxCorners best by Harris), with Harris response and angle. */
export function detectCorners(img: Image, opts: CornerOptions): Corners {
  return native.detect(...nativeArgs(img, opts));
}

/** As detectCorners, off the event loop. */
export async function detectCornersAsync(img: Image, opts: CornerOptions, how: AsyncOptions = {}): Promise<Corners> {
  return native.detectAsync(...nativeArgs(img, opts), how.inPlace === true);
}

type Args = Parameters<typeof native.detect>;

function nativeArgs(img: Image, opts: CornerOptions): Args {
  const { width, height, depth, pixels } = checkImage(img);
  if (typeof opts !== 'object' || opts === null) throw new TypeError('opts must be an object {threshold, maxCorners?}');
  const tmax = depth === 8 ? 255 : 65535;
  const { threshold } = opts;
  if (typeof threshold !== 'number') throw new TypeError(`opts.threshold must be a number, got ${describe(threshold)}`);
  if (!Number.isInteger(threshold) || threshold < 0 || threshold > tmax) {
    throw new RangeError(`opts.threshold must be an integer from 0 to ${tmax} for a ${depth}-bit image, got ${threshold}`);
  }
  const maxCorners = optionalInt(opts.maxCorners, 'opts.maxCorners', 1, 2 ** 30, 0);
  const border = optionalInt(opts.border, 'opts.border', 0, MAX_SIDE, 0);
  const threads = optionalInt(opts.threads, 'opts.threads', 1, MAX_THREADS, 1);
  return [pixels, width, height, width, depth, threshold, maxCorners, border, threads, true];
}

function optionalInt(v: unknown, name: string, min: number, max: number, absent: number): number {
  if (v === undefined) return absent;
  if (typeof v !== 'number') throw new TypeError(`${name} must be a number, got ${describe(v)}`);
  if (!Number.isInteger(v) || v < min || v > max) throw new RangeError(`${name} must be an integer from ${min} to ${max}, got ${v}`);
  return v;
}
