// The one decode module: grey PNG (the addon, src/frame/png.ts, when built with libdeflate),
// baseline uncompressed grey TIFF (src/frame/tiff.ts), any other PNG, TIFF, JPEG (sharp) and BMP
// (sharp has no BMP reader) into one grayscale channel of 8 or 16 bits.
// 16-bit frames stay 16-bit: X-ray detectors deliver them so.
import sharp from 'sharp';
import { decodeGreyPng, greyPngWorkBytes, nativePng } from './png.ts';
import { greyPngLayout, isPng } from './png-format.ts';
import { greyTiffLayout, readGreyTiff } from './tiff.ts';
import { FrameError } from '../errors.ts';
import type { Image } from '../types.ts';
import type { AsyncOptions } from '../vision/image-args.ts';

export interface DecodeLimits {
  /** Smallest accepted side in pixels (SPEC: 256). */
  minSide: number;
  /** Largest accepted side in pixels (SPEC: 8192); larger headers are refused before decoding. */
  maxSide: number;
}

export const SPEC_LIMITS: DecodeLimits = { minSide: 256, maxSide: 8192 };

/** Colour frames are accepted when they are grey stored as RGB (some exports are): mean |R-G|+|G-B| below this. */
const GREY_CHROMA_TOLERANCE = 2;

/**
 * `pixelBuffer`, when given, lends the buffer a grey PNG is decoded into (the addon's path): a
 * caller judging frame after frame reuses one instead of a fresh 8 MB each time. `inPlace`: the
 * addon reads `bytes` without copying them; the caller leaves them alone until this settles.
 */
export async function decodeFrame(
  bytes: Uint8Array,
  limits: DecodeLimits = SPEC_LIMITS,
  pixelBuffer?: (bytes: number) => ArrayBuffer,
  options: AsyncOptions = {},
): Promise<Image> {
  if (bytes.length === 0) throw new FrameError('DECODE_ERROR', 'the file is empty (0 bytes)');
  if (isBmp(bytes)) return checkSize(decodeBmp(bytes, limits), limits);
  if (nativePng && isPng(bytes)) {
    const layout = greyPngLayout(bytes);
    if (layout) {
      checkHeader(layout.width, layout.height, limits);
      const out = pixelBuffer?.(greyPngWorkBytes(layout));
      return { width: layout.width, height: layout.height, depth: layout.depth, pixels: await decodeGreyPng(bytes, layout, out, options) };
    }
  }
  const tiff = greyTiffLayout(bytes);
  if (tiff) {
    checkHeader(tiff.width, tiff.height, limits);
    return { width: tiff.width, height: tiff.height, depth: tiff.depth, pixels: readGreyTiff(bytes, tiff) };
  }

  let meta: sharp.Metadata;
  try {
    meta = await sharp(bytes, { limitInputPixels: false }).metadata();
  } catch (err) {
    throw new FrameError('DECODE_ERROR', `not a readable image (PNG, TIFF, JPEG or BMP): ${(err as Error).message}`);
  }
  const { width = 0, height = 0, channels = 0, depth } = meta;
  checkHeader(width, height, limits);
  // A header may claim thousands of samples per pixel (a damaged TIFF): libvips then works for
  // minutes on one frame, so anything beyond grey/RGB with alpha is refused unread.
  if (channels < 1 || channels > 4) {
    throw new FrameError('BAD_FRAME', `${channels} samples per pixel: frames are grayscale (1 channel, or grey stored as RGB)`);
  }
  if (depth !== 'uchar' && depth !== 'ushort') {
    throw new FrameError('BAD_FRAME', `unsupported sample type '${depth}': frames are 8- or 16-bit unsigned integers`);
  }
  const sixteen = depth === 'ushort';
  const grey = channels <= 2;
  // sharp converts to sRGB on output unless told the colourspace; grey16 keeps all 16 bits.
  const space = grey ? (sixteen ? 'grey16' : 'b-w') : sixteen ? 'rgb16' : 'srgb';
  let raw: { data: Buffer; info: sharp.OutputInfo };
  try {
    // failOn 'error', not 'truncated': libtiff reports a short strip only as an error, and
    // 'truncated' let such a TIFF through with its missing rows as zeros.
    let pipeline = sharp(bytes, { limitInputPixels: width * height, failOn: 'error' }).toColourspace(space);
    pipeline = grey ? pipeline.extractChannel(0) : pipeline.removeAlpha();
    raw = await pipeline.raw({ depth: sixteen ? 'ushort' : 'uchar' }).toBuffer({ resolveWithObject: true });
  } catch (err) {
    throw new FrameError('DECODE_ERROR', `the image data is damaged or truncated: ${(err as Error).message}`);
  }
  const n = width * height;
  const ch = raw.info.channels;
  if (raw.info.width !== width || raw.info.height !== height) {
    throw new FrameError('DECODE_ERROR', 'decoded size differs from the header');
  }
  const src = sixteen
    ? new Uint16Array(raw.data.buffer, raw.data.byteOffset, n * ch)
    : new Uint8Array(raw.data.buffer, raw.data.byteOffset, n * ch);
  const pixels = ch === 1 ? src.slice() : toGrey(src, ch, n, channels);
  return { width, height, depth: sixteen ? 16 : 8, pixels };
}

function checkHeader(width: number, height: number, limits: DecodeLimits): void {
  if (!(width > 0 && height > 0)) throw new FrameError('BAD_FRAME', `the image is empty (${width}x${height})`);
  if (width > limits.maxSide || height > limits.maxSide) {
    throw new FrameError(
      'FRAME_TOO_LARGE',
      `${width}x${height} exceeds the largest accepted frame of ${limits.maxSide} pixels a side`,
    );
  }
  if (width < limits.minSide || height < limits.minSide) {
    throw new FrameError('BAD_FRAME', `${width}x${height} is smaller than the smallest accepted frame of ${limits.minSide} pixels a side`);
  }
}

function checkSize(img: Image, limits: DecodeLimits): Image {
  checkHeader(img.width, img.height, limits);
  return img;
}

/** Grey from interleaved channels; refuses true colour (a frame from the wrong camera or export). */
function toGrey<T extends Uint8Array | Uint16Array>(src: T, ch: number, n: number, declared: number): T {
  const out = (src instanceof Uint16Array ? new Uint16Array(n) : new Uint8Array(n)) as T;
  let chroma = 0;
  for (let i = 0; i < n; i++) {
    const r = src[i * ch]!, g = src[i * ch + 1]!, b = src[i * ch + 2]!;
    chroma += Math.abs(r - g) + Math.abs(g - b);
    out[i] = Math.round(0.299 * r + 0.587 * g + 0.114 * b);
  }
  const scale = src instanceof Uint16Array ? 257 : 1;
  if (chroma / n > GREY_CHROMA_TOLERANCE * scale) {
    throw new FrameError('BAD_FRAME', `a colour frame (${declared} channels with differing content): X-ray frames are grayscale`);
  }
  return out;
}

function isBmp(b: Uint8Array): boolean {
  return b.length >= 2 && b[0] === 0x42 && b[1] === 0x4d;
}

/** Uncompressed BMP (BI_RGB) with 8-bit palette, 24 or 32 bits per pixel, bottom-up or top-down. */
function decodeBmp(b: Uint8Array, limits: DecodeLimits): Image {
  const fail = (what: string): never => {
    throw new FrameError('DECODE_ERROR', `BMP: ${what}`);
  };
  if (b.length < 54) fail(`truncated header (${b.length} bytes)`);
  const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
  const dataOffset = dv.getUint32(10, true);
  const headerSize = dv.getUint32(14, true);
  if (headerSize < 40) fail(`unsupported header size ${headerSize}`);
  const width = dv.getInt32(18, true);
  const rawHeight = dv.getInt32(22, true);
  const bpp = dv.getUint16(28, true);
  const compression = dv.getUint32(30, true);
  const height = Math.abs(rawHeight);
  checkHeader(width, height, limits);
  if (compression !== 0 && !(compression === 3 && bpp === 32)) fail(`compression ${compression} is not supported`);
  if (bpp !== 8 && bpp !== 24 && bpp !== 32) fail(`${bpp} bits per pixel is not supported (8, 24 or 32)`);
  const rowBytes = Math.ceil((width * bpp) / 32) * 4;
  if (dataOffset + rowBytes * height > b.length) fail('pixel data is truncated');
  const pixels = new Uint8Array(width * height);
  const bottomUp = rawHeight > 0;
  let palette: Uint8Array | undefined;
  if (bpp === 8) {
    const colours = dv.getUint32(46, true) || 256;
    const palStart = 14 + headerSize;
    if (palStart + colours * 4 > dataOffset) fail('palette is truncated');
    palette = new Uint8Array(256);
    for (let i = 0; i < colours && i < 256; i++) {
      const o = palStart + i * 4;
      const bl = b[o]!, g = b[o + 1]!, r = b[o + 2]!;
      if (Math.abs(r - g) + Math.abs(g - bl) > 3 * GREY_CHROMA_TOLERANCE) {
        throw new FrameError('BAD_FRAME', 'a colour-palette BMP: X-ray frames are grayscale');
      }
      palette[i] = Math.round(0.299 * r + 0.587 * g + 0.114 * bl);
    }
  }
  const step = bpp / 8;
  let chroma = 0;
  for (let y = 0; y < height; y++) {
    const row = dataOffset + (bottomUp ? height - 1 - y : y) * rowBytes;
    const out = y * width;
    if (palette) {
      for (let x = 0; x < width; x++) pixels[out + x] = palette[b[row + x]!]!;
    } else {
      for (let x = 0; x < width; x++) {
        const o = row + x * step;
        const bl = b[o]!, g = b[o + 1]!, r = b[o + 2]!;
        chroma += Math.abs(r - g) + Math.abs(g - bl);
        pixels[out + x] = Math.round(0.299 * r + 0.587 * g + 0.114 * bl);
      }
    }
  }
  if (chroma / (width * height) > GREY_CHROMA_TOLERANCE) {
    throw new FrameError('BAD_FRAME', 'a colour BMP: X-ray frames are grayscale');
  }
  return { width, height, depth: 8, pixels };
}

/** Encodes a frame as a PNG (8- or 16-bit grey), keeping every bit. */
export async function encodePng(img: Image): Promise<Buffer> {
  const { width, height, depth, pixels } = img;
  // A Uint16Array input tells sharp the raw samples are 16-bit.
  const s = sharp(pixels, { raw: { width, height, channels: 1 } });
  return s.toColourspace(depth === 16 ? 'grey16' : 'b-w').png({ compressionLevel: 3 }).toBuffer();
}
