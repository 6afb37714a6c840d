// Grey PNG frames (the usual 8- and 16-bit detector export) decoded by the addon: the chunk walk
// and header checks in png-format.ts, inflate (libdeflate) and the row filters in C++ (native/png.cc), off
// the event loop. At 2048² 16-bit this takes about half of sharp's time, which is mostly zlib's
// inflate (bench/pipeline.ts). Every other PNG (colour, alpha, 1-4 bit, interlaced) goes to sharp.
import { FrameError } from '../errors.ts';
import { native } from '../native.ts';
import type { GreyPngLayout } from './png-format.ts';
import type { AsyncOptions } from '../vision/image-args.ts';

/** True when the addon has the fast grey PNG path (built with libdeflate). */
export const nativePng = typeof native.decodeGreyPngAsync === 'function';

/** Bytes the addon decodes a grey PNG in: every row with its filter byte (the pixels end up first). */
export function greyPngWorkBytes(layout: Pick<GreyPngLayout, 'width' | 'height' | 'depth'>): number {
  return (layout.width * (layout.depth / 8) + 1) * layout.height;
}

/**
 * The samples of a grey PNG laid out by greyPngLayout; FrameError('DECODE_ERROR') when its data is
 * corrupt. With `out` (greyPngWorkBytes long at least) they are decoded into it and view it.
 * With `inPlace` the addon reads `b` without copying it: leave it unchanged until this settles.
 */
export async function decodeGreyPng(b: Uint8Array, layout: GreyPngLayout, out?: ArrayBuffer, { inPlace = false }: AsyncOptions = {}): Promise<Uint8Array | Uint16Array> {
  try {
    return await native.decodeGreyPngAsync!(b, layout.idat, layout.width, layout.height, layout.depth, out, inPlace);
  } catch (err) {
    throw new FrameError('DECODE_ERROR', `PNG: ${(err as Error).message}`);
  }
}
