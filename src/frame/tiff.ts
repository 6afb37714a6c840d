// Baseline uncompressed grey TIFF, the usual raw export of an X-ray detector, read without
// libvips: its strips are the samples already, so decoding is a copy (and a byte swap for a
// big-endian file). Anything else (compressed, tiled, colour, float, white-is-zero, BigTIFF, a
// damaged directory or strips past the end of the file) is left to sharp, which also names
// what is wrong.
import { endianness } from 'node:os';

export interface GreyTiffLayout {
  width: number;
  height: number;
  depth: 8 | 16;
  littleEndian: boolean;
  /** [offset, bytes] of each strip's samples, top to bottom. */
  strips: number[];
}

const TAG = {
  width: 256,
  height: 257,
  bitsPerSample: 258,
  compression: 259,
  photometric: 262,
  fillOrder: 266,
  stripOffsets: 273,
  samplesPerPixel: 277,
  rowsPerStrip: 278,
  stripByteCounts: 279,
  planarConfig: 284,
  predictor: 317,
  tileWidth: 322,
  sampleFormat: 339,
} as const;

export function isTiff(b: Uint8Array): boolean {
  return b.length >= 8 && ((b[0] === 0x49 && b[1] === 0x49 && b[2] === 42 && b[3] === 0) || (b[0] === 0x4d && b[1] === 0x4d && b[2] === 0 && b[3] === 42));
}

/** Where the samples of a baseline uncompressed 8- or 16-bit grey TIFF lie (its first image); null for any other TIFF. */
export function greyTiffLayout(b: Uint8Array): GreyTiffLayout | null {
  if (!isTiff(b)) return null;
  const le = b[0] === 0x49;
  const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
  const u16 = (at: number) => dv.getUint16(at, le);
  const u32 = (at: number) => dv.getUint32(at, le);
  const ifd = u32(4);
  if (ifd < 8 || ifd + 2 > b.length) return null;
  const n = u16(ifd);
  if (ifd + 2 + 12 * n > b.length) return null;
  const tags = new Map<number, number[]>();
  for (let i = 0; i < n; i++) {
    const e = ifd + 2 + 12 * i;
    const type = u16(e + 2);
    const count = u32(e + 4);
    const size = type === 3 ? 2 : type === 4 ? 4 : 0;
    // Only SHORT and LONG values matter here; a tag of another type is kept as unreadable.
    if (size === 0) {
      tags.set(u16(e), []);
      continue;
    }
    const at = count * size <= 4 ? e + 8 : u32(e + 8);
    if (count > 1 << 20 || at + count * size > b.length) return null;
    const values: number[] = [];
    for (let k = 0; k < count; k++) values.push(size === 2 ? u16(at + 2 * k) : u32(at + 4 * k));
    tags.set(u16(e), values);
  }
  const one = (tag: number, absent?: number): number | undefined => {
    const v = tags.get(tag);
    if (v === undefined) return absent;
    return v.length === 1 ? v[0] : undefined;
  };
  const width = one(TAG.width);
  const height = one(TAG.height);
  const depth = one(TAG.bitsPerSample);
  if (width === undefined || height === undefined || width < 1 || height < 1 || (depth !== 8 && depth !== 16)) return null;
  const baseline =
    one(TAG.samplesPerPixel, 1) === 1 &&
    one(TAG.compression, 1) === 1 &&
    one(TAG.photometric) === 1 &&
    one(TAG.sampleFormat, 1) === 1 &&
    one(TAG.predictor, 1) === 1 &&
    one(TAG.fillOrder, 1) === 1 &&
    one(TAG.planarConfig, 1) === 1 &&
    !tags.has(TAG.tileWidth);
  if (!baseline) return null;
  const offsets = tags.get(TAG.stripOffsets);
  const counts = tags.get(TAG.stripByteCounts);
  const rowsPerStrip = Math.min(one(TAG.rowsPerStrip, height) ?? height, height);
  if (!offsets || !counts || offsets.length !== counts.length || rowsPerStrip < 1) return null;
  if (offsets.length !== Math.ceil(height / rowsPerStrip)) return null;
  const rowBytes = width * (depth / 8);
  const strips: number[] = [];
  for (let k = 0; k < offsets.length; k++) {
    const need = Math.min(rowsPerStrip, height - k * rowsPerStrip) * rowBytes;
    if (counts[k]! < need || offsets[k]! + need > b.length) return null;
    strips.push(offsets[k]!, need);
  }
  return { width, height, depth, littleEndian: le, strips };
}

const HOST_LITTLE_ENDIAN = endianness() === 'LE';

/**
 * The samples of a TIFF laid out by greyTiffLayout, in the machine's byte order: a view on `b`
 * itself when its strips lie back to back in that byte order (the usual raw export), so an 8 MB
 * frame costs no copy and no second allocation; else a copy.
 */
export function readGreyTiff(b: Uint8Array, layout: GreyTiffLayout): Uint8Array | Uint16Array {
  const { width, height, depth, strips } = layout;
  const n = width * height;
  const first = strips[0]!;
  let contiguous = true;
  for (let k = 2; k < strips.length; k += 2) contiguous &&= strips[k] === strips[k - 2]! + strips[k - 1]!;
  if (contiguous && depth === 8) return b.subarray(first, first + n);
  if (contiguous && layout.littleEndian === HOST_LITTLE_ENDIAN && (b.byteOffset + first) % 2 === 0) {
    return new Uint16Array(b.buffer, b.byteOffset + first, n);
  }
  const bytes = new Uint8Array(n * (depth / 8));
  for (let k = 0, at = 0; k < strips.length; k += 2) {
    bytes.set(b.subarray(strips[k], strips[k]! + strips[k + 1]!), at);
    at += strips[k + 1]!;
  }
  if (depth === 8) return bytes;
  if (layout.littleEndian !== HOST_LITTLE_ENDIAN) {
    for (let i = 0; i < bytes.length; i += 2) {
      const t = bytes[i]!;
      bytes[i] = bytes[i + 1]!;
      bytes[i + 1] = t;
    }
  }
  return new Uint16Array(bytes.buffer);
}
