// A corpus of frames that must not be judged, made by code (no binary fixtures): each entry
// carries the ERROR reason decodeFrame throws for it and the one pipeline.judge must report.
// Headers that lie (decompression bombs) are written by hand with correct CRCs, so the decoder
// sees a well-formed file and has to refuse it on its dimensions alone.
import { deflateSync } from 'node:zlib';
import sharp from 'sharp';
import type { ErrorReason } from '../../src/types.ts';
import { prng } from './prng.ts';

export interface BadFrame {
  /** File name as a detector would write it (the extension matches the content, or lies on purpose). */
  name: string;
  bytes: Uint8Array;
  /** What decodeFrame throws; null when the frame decodes and a later stage must refuse it. */
  decode: ErrorReason | null;
  /** The single reason pipeline.judge must report. */
  judge: ErrorReason;
  why: string;
}

// ---------------------------------------------------------------- small, deterministic sources

// prng (mulberry32, ./prng.ts) makes every corpus run byte-identical.
export { prng };

const CRC_TABLE = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();

export function crc32(bytes: Uint8Array): number {
  let c = 0xffffffff;
  for (const b of bytes) c = CRC_TABLE[(c ^ b) & 0xff]! ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

// ---------------------------------------------------------------- hand-written containers

export const PNG_SIGNATURE = Uint8Array.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);

/** One PNG chunk: length, type, data and its CRC. */
export function pngChunk(type: string, data: Uint8Array): Buffer {
  const head = Buffer.alloc(8);
  head.writeUInt32BE(data.length, 0);
  head.write(type, 4, 'latin1');
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(Buffer.concat([head.subarray(4), data])), 0);
  return Buffer.concat([head, data, crc]);
}

/**
 * A well-formed PNG header (correct CRCs) that claims width x height, followed by a small IDAT
 * that holds only the first rows: a decoder that trusts the header allocates width*height*bytes.
 */
export function pngClaiming(width: number, height: number, bitDepth: 8 | 16 = 16): Buffer {
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr[8] = bitDepth;
  ihdr[9] = 0; // greyscale
  const rowBytes = 1 + (width * bitDepth) / 8;
  const rows = Math.max(1, Math.min(height, Math.floor(65536 / rowBytes)));
  const idat = deflateSync(Buffer.alloc(rows * rowBytes));
  return Buffer.concat([PNG_SIGNATURE, pngChunk('IHDR', ihdr), pngChunk('IDAT', idat), pngChunk('IEND', new Uint8Array(0))]);
}

interface TiffSpec {
  width: number;
  height: number;
  bitsPerSample: 8 | 16 | 32;
  /** TIFF SampleFormat: 1 unsigned integer, 3 IEEE float. */
  sampleFormat: 1 | 3;
  /** SamplesPerPixel as the header states it (default 1). */
  samplesPerPixel?: number;
  /** Pixel bytes actually stored (may be shorter than the header claims). */
  data: Uint8Array;
}

/** A baseline little-endian, single-strip, uncompressed grey TIFF with its IFD before the pixels. */
export function tiff(spec: TiffSpec): Buffer {
  const { width, height, bitsPerSample, sampleFormat, data, samplesPerPixel = 1 } = spec;
  const entries: [tag: number, type: number, value: number][] = [
    [256, 4, width], // ImageWidth (LONG)
    [257, 4, height], // ImageLength
    [258, 3, bitsPerSample], // BitsPerSample (SHORT)
    [259, 3, 1], // Compression: none
    [262, 3, 1], // PhotometricInterpretation: BlackIsZero
    [273, 4, 0], // StripOffsets, patched below
    [277, 3, samplesPerPixel], // SamplesPerPixel
    [278, 4, height], // RowsPerStrip
    [279, 4, (width * height * bitsPerSample) / 8], // StripByteCounts: what the header claims
    [339, 3, sampleFormat], // SampleFormat
  ];
  const ifdSize = 2 + entries.length * 12 + 4;
  const dataOffset = 8 + ifdSize;
  const head = Buffer.alloc(dataOffset);
  head.write('II', 0, 'latin1');
  head.writeUInt16LE(42, 2);
  head.writeUInt32LE(8, 4);
  head.writeUInt16LE(entries.length, 8);
  entries.forEach(([tag, type, value], i) => {
    const o = 10 + i * 12;
    head.writeUInt16LE(tag, o);
    head.writeUInt16LE(type, o + 2);
    head.writeUInt32LE(1, o + 4);
    const v = tag === 273 ? dataOffset : value;
    if (type === 3) head.writeUInt16LE(v, o + 8);
    else head.writeUInt32LE(v >>> 0, o + 8);
  });
  head.writeUInt32LE(0, 10 + entries.length * 12); // no next IFD
  return Buffer.concat([head, data]);
}

/** An uncompressed 24-bit BMP header claiming width x height followed by `data`. */
export function bmp(width: number, height: number, data: Uint8Array): Buffer {
  const rowBytes = Math.ceil((width * 24) / 32) * 4;
  const h = Buffer.alloc(54);
  h.write('BM', 0, 'latin1');
  h.writeUInt32LE(54 + rowBytes * height > 0xffffffff ? 0xffffffff : 54 + rowBytes * height, 2);
  h.writeUInt32LE(54, 10);
  h.writeUInt32LE(40, 14);
  h.writeInt32LE(width, 18);
  h.writeInt32LE(height, 22);
  h.writeUInt16LE(1, 26);
  h.writeUInt16LE(24, 28);
  h.writeUInt32LE(0, 30);
  return Buffer.concat([h, data]);
}

/** Rewrites the frame size in a baseline JPEG's SOF0 marker (the header then lies). */
export function jpegClaiming(jpeg: Uint8Array, width: number, height: number): Buffer {
  const out = Buffer.from(jpeg);
  for (let i = 2; i + 9 < out.length; ) {
    if (out[i] !== 0xff) throw new Error('jpegClaiming: not at a marker');
    const marker = out[i + 1]!;
    const len = out.readUInt16BE(i + 2);
    if (marker >= 0xc0 && marker <= 0xc2) {
      out.writeUInt16BE(height, i + 5);
      out.writeUInt16BE(width, i + 7);
      return out;
    }
    i += 2 + len;
  }
  throw new Error('jpegClaiming: no SOF marker');
}

// ---------------------------------------------------------------- frames

/** A 16-bit frame with structure (a dark band of lines), exact to round-trip, no cell model behind it. */
export function texturedPixels16(width: number, height: number, seed = 1): Uint16Array {
  const rnd = prng(seed);
  const px = new Uint16Array(width * height);
  for (let y = 0; y < height; y++) {
    const band = Math.abs(y - height / 2) < height / 6 ? (y % 12 < 5 ? 12000 : 26000) : 40000;
    for (let x = 0; x < width; x++) px[y * width + x] = band + Math.floor(rnd() * 2000) + x * 4;
  }
  return px;
}

export async function png16(width: number, height: number, px: Uint16Array): Promise<Buffer> {
  return sharp(px, { raw: { width, height, channels: 1 } }).toColourspace('grey16').png({ compressionLevel: 1 }).toBuffer();
}

async function png8(width: number, height: number, channels: 1 | 3, px: Uint8Array): Promise<Buffer> {
  return sharp(px, { raw: { width, height, channels } }).png({ compressionLevel: 1 }).toBuffer();
}

function uniform16(width: number, height: number, value: number): Uint16Array {
  return new Uint16Array(width * height).fill(value);
}

/** Valid frames of every accepted container (for the fuzzer's seeds and the "next good frame" checks). */
export async function validFrames(): Promise<{ name: string; bytes: Buffer; depth: 8 | 16; width: number; height: number }[]> {
  const w = 320, h = 288;
  const px = texturedPixels16(w, h, 7);
  const px8 = Uint8Array.from(px, (v) => v >> 8);
  const bmpRows = Buffer.alloc(Math.ceil((w * 24) / 32) * 4 * h);
  const rowBytes = Math.ceil((w * 24) / 32) * 4;
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const v = px8[(h - 1 - y) * w + x]!; // bottom-up rows
      bmpRows.fill(v, y * rowBytes + x * 3, y * rowBytes + x * 3 + 3);
    }
  }
  return [
    { name: 'valid16.png', bytes: await png16(w, h, px), depth: 16, width: w, height: h },
    {
      name: 'valid16.tif',
      bytes: tiff({ width: w, height: h, bitsPerSample: 16, sampleFormat: 1, data: Buffer.from(px.buffer, px.byteOffset, px.byteLength) }),
      depth: 16, width: w, height: h,
    },
    { name: 'valid8.jpg', bytes: await sharp(px8, { raw: { width: w, height: h, channels: 1 } }).jpeg({ quality: 90 }).toBuffer(), depth: 8, width: w, height: h },
    { name: 'valid8.bmp', bytes: bmp(w, h, bmpRows), depth: 8, width: w, height: h },
  ];
}

/** The corpus. Sizes are small (<= 1024 a side) so the whole corpus decodes in well under a second. */
export async function badFrames(): Promise<BadFrame[]> {
  const w = 512, h = 512;
  const px = texturedPixels16(w, h, 3);
  const good16 = await png16(w, h, px);
  const goodTif = tiff({ width: w, height: h, bitsPerSample: 16, sampleFormat: 1, data: Buffer.from(px.buffer) });
  const px8 = Uint8Array.from(px, (v) => v >> 8);
  const goodJpg = await sharp(px8, { raw: { width: w, height: h, channels: 1 } }).jpeg({ quality: 90 }).toBuffer();
  const rgb = new Uint8Array(w * h * 3);
  const rnd = prng(11);
  for (let i = 0; i < w * h; i++) {
    // real colour: red and blue halves, not grey stored as RGB
    const left = i % w < w / 2;
    rgb[i * 3] = left ? 200 : 20;
    rgb[i * 3 + 1] = 60 + Math.floor(rnd() * 10);
    rgb[i * 3 + 2] = left ? 20 : 200;
  }
  const floatPx = new Float32Array(w * h);
  for (let i = 0; i < floatPx.length; i++) floatPx[i] = px[i]! / 65535;

  const noise = new Uint16Array(1024 * 1024);
  const rn = prng(5);
  for (let i = 0; i < noise.length; i++) noise[i] = 20000 + Math.floor(rn() * 20000);
  const gradient = new Uint16Array(1024 * 1024);
  for (let y = 0; y < 1024; y++) for (let x = 0; x < 1024; x++) gradient[y * 1024 + x] = 5000 + y * 40 + x * 10;

  const bmpData = Buffer.alloc(Math.ceil((w * 24) / 32) * 4 * h, 128);
  const truncatedBmp = bmp(w, h, bmpData).subarray(0, 54 + bmpData.length / 2);

  const corrupt = Buffer.from(good16);
  // flip bytes in the middle of the IDAT stream: the CRC no longer matches
  for (let i = Math.floor(corrupt.length / 2); i < corrupt.length / 2 + 64; i++) corrupt[i]! ^= 0x5a;

  return [
    { name: 'empty.png', bytes: new Uint8Array(0), decode: 'DECODE_ERROR', judge: 'DECODE_ERROR', why: 'zero bytes' },
    {
      name: 'not-an-image.tif', bytes: Buffer.from('This is a log file, not a frame.\n'.repeat(40)),
      decode: 'DECODE_ERROR', judge: 'DECODE_ERROR', why: 'text with an image extension',
    },
    {
      name: 'png-signature-only.png', bytes: Buffer.concat([PNG_SIGNATURE, Buffer.from('garbage after the signature')]),
      decode: 'DECODE_ERROR', judge: 'DECODE_ERROR', why: 'PNG signature followed by garbage',
    },
    { name: 'truncated-half.png', bytes: good16.subarray(0, good16.length >> 1), decode: 'DECODE_ERROR', judge: 'DECODE_ERROR', why: '16-bit PNG cut in half' },
    { name: 'truncated-ihdr.png', bytes: good16.subarray(0, 20), decode: 'DECODE_ERROR', judge: 'DECODE_ERROR', why: 'PNG cut inside IHDR' },
    { name: 'corrupt-idat.png', bytes: corrupt, decode: 'DECODE_ERROR', judge: 'DECODE_ERROR', why: 'PNG with damaged IDAT (bad CRC)' },
    { name: 'truncated.tif', bytes: goodTif.subarray(0, goodTif.length >> 1), decode: 'DECODE_ERROR', judge: 'DECODE_ERROR', why: '16-bit TIFF strip cut in half' },
    { name: 'truncated.jpg', bytes: goodJpg.subarray(0, goodJpg.length >> 1), decode: 'DECODE_ERROR', judge: 'DECODE_ERROR', why: 'JPEG cut in half' },
    { name: 'truncated.bmp', bytes: truncatedBmp, decode: 'DECODE_ERROR', judge: 'DECODE_ERROR', why: 'BMP pixel data cut in half' },
    { name: 'colour-rgb8.png', bytes: await png8(w, h, 3, rgb), decode: 'BAD_FRAME', judge: 'BAD_FRAME', why: '8-bit RGB with real colour' },
    {
      name: 'colour-rgb8.jpg', bytes: await sharp(rgb, { raw: { width: w, height: h, channels: 3 } }).jpeg().toBuffer(),
      decode: 'BAD_FRAME', judge: 'BAD_FRAME', why: 'colour JPEG',
    },
    {
      name: 'float32.tif', bytes: tiff({ width: w, height: h, bitsPerSample: 32, sampleFormat: 3, data: Buffer.from(floatPx.buffer) }),
      decode: 'BAD_FRAME', judge: 'BAD_FRAME', why: '32-bit float TIFF',
    },
    {
      name: 'channels-8193.tif', bytes: tiff({ width: w, height: h, bitsPerSample: 16, sampleFormat: 1, samplesPerPixel: 8193, data: Buffer.from(px.buffer) }),
      decode: 'BAD_FRAME', judge: 'BAD_FRAME', why: 'TIFF header claims 8193 samples per pixel (found by the fuzzer: libvips took minutes)',
    },
    { name: 'one-pixel.png', bytes: await png16(1, 1, Uint16Array.of(30000)), decode: 'BAD_FRAME', judge: 'BAD_FRAME', why: '1x1 frame' },
    { name: 'too-small.png', bytes: await png16(200, 300, new Uint16Array(200 * 300).fill(9000)), decode: 'BAD_FRAME', judge: 'BAD_FRAME', why: '200x300, under 256 a side' },
    { name: 'bomb-100000.png', bytes: pngClaiming(100_000, 100_000), decode: 'FRAME_TOO_LARGE', judge: 'FRAME_TOO_LARGE', why: 'IHDR claims 100000x100000 (20 GB at 16 bit)' },
    { name: 'bomb-tall.png', bytes: pngClaiming(300, 9000), decode: 'FRAME_TOO_LARGE', judge: 'FRAME_TOO_LARGE', why: 'IHDR claims 300x9000, over 8192 a side' },
    {
      name: 'bomb-100000.tif', bytes: tiff({ width: 100_000, height: 100_000, bitsPerSample: 16, sampleFormat: 1, data: new Uint8Array(4096) }),
      decode: 'FRAME_TOO_LARGE', judge: 'FRAME_TOO_LARGE', why: 'TIFF header claims 100000x100000',
    },
    { name: 'bomb-60000.jpg', bytes: jpegClaiming(goodJpg, 60_000, 60_000), decode: 'FRAME_TOO_LARGE', judge: 'FRAME_TOO_LARGE', why: 'JPEG SOF claims 60000x60000' },
    { name: 'bomb-100000.bmp', bytes: bmp(100_000, 100_000, new Uint8Array(4096)), decode: 'FRAME_TOO_LARGE', judge: 'FRAME_TOO_LARGE', why: 'BMP header claims 100000x100000' },
    { name: 'black.png', bytes: await png16(1024, 1024, uniform16(1024, 1024, 0)), decode: null, judge: 'ROI_NOT_FOUND', why: 'all-black frame (detector off)' },
    { name: 'saturated.png', bytes: await png16(1024, 1024, uniform16(1024, 1024, 65535)), decode: null, judge: 'ROI_NOT_FOUND', why: 'saturated frame (no object in the beam)' },
    { name: 'noise.png', bytes: await png16(1024, 1024, noise), decode: null, judge: 'ROI_NOT_FOUND', why: 'uniform noise, no cell' },
    { name: 'gradient.png', bytes: await png16(1024, 1024, gradient), decode: null, judge: 'ROI_NOT_FOUND', why: 'smooth gradient (heel effect only), no cell' },
  ];
}
