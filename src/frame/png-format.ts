// PNG format knowledge without the addon (the hot folder uses it too): the signature, the
// trailer a whole file ends with, and where a grey PNG's pixel data lies (chunk walk, IHDR checks).
import { crc32 } from 'node:zlib';
import { FrameError } from '../errors.ts';

export interface GreyPngLayout {
  width: number;
  height: number;
  depth: 8 | 16;
  /** [offset, length] of each IDAT chunk's data, in file order. */
  idat: Uint32Array;
}

const SIGNATURE = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];

/** A PNG's last chunk, IEND with its fixed CRC: no half-written PNG ends with these 12 bytes. */
export const PNG_END = Uint8Array.from([0, 0, 0, 0, 0x49, 0x45, 0x4e, 0x44, 0xae, 0x42, 0x60, 0x82]);

export function isPng(b: Uint8Array): boolean {
  return b.length >= 8 && SIGNATURE.every((v, i) => b[i] === v);
}

/**
 * Where the pixel data of a grey PNG lies: null for a PNG that is not 8- or 16-bit grey without
 * interlacing (sharp decodes those). Throws FrameError('DECODE_ERROR') naming what is damaged.
 */
export function greyPngLayout(b: Uint8Array): GreyPngLayout | null {
  const fail = (what: string): never => {
    throw new FrameError('DECODE_ERROR', `PNG: ${what}`);
  };
  const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
  const type = (at: number) => String.fromCharCode(b[at]!, b[at + 1]!, b[at + 2]!, b[at + 3]!);
  if (b.length < 8 + 12 + 13) fail(`the file ends inside the header (${b.length} bytes)`);
  if (dv.getUint32(8) !== 13 || type(12) !== 'IHDR') fail('the first chunk is not a 13-byte IHDR');
  if ((crc32(b.subarray(12, 29)) >>> 0) !== dv.getUint32(29)) fail('the header (IHDR) fails its checksum');
  const width = dv.getUint32(16);
  const height = dv.getUint32(20);
  const bitDepth = b[24]!;
  const colourType = b[25]!;
  if (b[26] !== 0 || b[27] !== 0) fail(`compression method ${b[26]} / filter method ${b[27]}: PNG knows only 0`);
  if (colourType !== 0 || (bitDepth !== 8 && bitDepth !== 16) || b[28] !== 0) return null;
  const idat: number[] = [];
  let at = 33;
  for (;;) {
    if (at + 8 > b.length) fail(idat.length ? 'the file ends before IEND (truncated)' : 'the file ends before any pixel data (truncated)');
    const len = dv.getUint32(at);
    const name = type(at + 4);
    if (at + 12 + len > b.length) fail(`the ${name} chunk runs past the end of the file (truncated)`);
    if (name === 'IDAT') idat.push(at + 8, len);
    if (name === 'IEND') break;
    at += 12 + len;
  }
  if (idat.length === 0) fail('no pixel data (IDAT chunk)');
  return { width, height, depth: bitDepth, idat: Uint32Array.from(idat) };
}
