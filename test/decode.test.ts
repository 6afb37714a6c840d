// The decode module: every bit of 16-bit frames kept, BMP by hand, typed FrameErrors for bad files.
import sharp from 'sharp';
import { describe, expect, it } from 'vitest';
import { FrameError } from '../src/errors.ts';
import { decodeFrame, encodePng } from '../src/frame/decode.ts';
import { greyTiffLayout } from '../src/frame/tiff.ts';
import type { Image } from '../src/types.ts';
import { rng } from './peers/opencv.ts';

function random16(width: number, height: number, seed: number): Image {
  const r = rng(seed);
  const pixels = Uint16Array.from({ length: width * height }, () => Math.floor(r() * 65536));
  pixels[0] = 0;
  pixels[1] = 65535;
  return { width, height, depth: 16, pixels };
}

function gradient8(width: number, height: number): Image {
  const pixels = Uint8Array.from({ length: width * height }, (_, i) => ((i % width) + 3 * Math.floor(i / width)) % 256);
  return { width, height, depth: 8, pixels };
}

async function reason(bytes: Uint8Array, limits?: Parameters<typeof decodeFrame>[1]): Promise<string> {
  try {
    await decodeFrame(bytes, limits);
  } catch (err) {
    expect(err).toBeInstanceOf(FrameError);
    return `${(err as FrameError).reason}: ${(err as FrameError).message}`;
  }
  return 'decoded';
}

/** A BMP written by hand: 8-bit with the given palette, or 24-bit from (r, g, b) per pixel. */
function bmp(width: number, height: number, opts: { palette?: number[][]; index?: (x: number, y: number) => number; rgb?: (x: number, y: number) => number[]; topDown?: boolean }): Uint8Array {
  const bpp = opts.palette ? 8 : 24;
  const rowBytes = Math.ceil((width * bpp) / 32) * 4;
  const palBytes = opts.palette ? opts.palette.length * 4 : 0;
  const offset = 54 + palBytes;
  const b = new Uint8Array(offset + rowBytes * height);
  const dv = new DataView(b.buffer);
  b[0] = 0x42;
  b[1] = 0x4d;
  dv.setUint32(2, b.length, true);
  dv.setUint32(10, offset, true);
  dv.setUint32(14, 40, true);
  dv.setInt32(18, width, true);
  dv.setInt32(22, opts.topDown ? -height : height, true);
  dv.setUint16(26, 1, true);
  dv.setUint16(28, bpp, true);
  dv.setUint32(30, 0, true);
  dv.setUint32(34, rowBytes * height, true);
  dv.setUint32(46, opts.palette ? opts.palette.length : 0, true);
  opts.palette?.forEach(([r, g, bl], i) => b.set([bl!, g!, r!, 0], 54 + i * 4));
  for (let y = 0; y < height; y++) {
    const row = offset + (opts.topDown ? y : height - 1 - y) * rowBytes;
    for (let x = 0; x < width; x++) {
      if (opts.palette) b[row + x] = opts.index!(x, y);
      else {
        const [r, g, bl] = opts.rgb!(x, y);
        b.set([bl!, g!, r!], row + 3 * x);
      }
    }
  }
  return b;
}

const crcTable = Array.from({ length: 256 }, (_, n) => {
  let c = n;
  for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  return c >>> 0;
});
function crc32(bytes: Uint8Array): number {
  let c = 0xffffffff;
  for (const v of bytes) c = crcTable[(c ^ v) & 0xff]! ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

/** A PNG whose valid IHDR claims width x height, followed by a tiny IDAT and IEND. */
function pngHeaderOnly(width: number, height: number): Uint8Array {
  const chunk = (type: string, data: Uint8Array) => {
    const out = new Uint8Array(12 + data.length);
    const dv = new DataView(out.buffer);
    dv.setUint32(0, data.length);
    out.set(Buffer.from(type, 'latin1'), 4);
    out.set(data, 8);
    dv.setUint32(8 + data.length, crc32(out.subarray(4, 8 + data.length)));
    return out;
  };
  const ihdr = new Uint8Array(13);
  const dv = new DataView(ihdr.buffer);
  dv.setUint32(0, width);
  dv.setUint32(4, height);
  ihdr.set([8, 0, 0, 0, 0], 8);
  return Buffer.concat([Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), chunk('IHDR', ihdr), chunk('IDAT', new Uint8Array([0x78, 0x9c, 0x03, 0x00, 0x00, 0x00, 0x00, 0x01])), chunk('IEND', new Uint8Array(0))]);
}

describe('decodeFrame: 16 bits kept', () => {
  it('round-trips a 16-bit PNG bit-exactly', async () => {
    const img = random16(300, 257, 1);
    const out = await decodeFrame(await encodePng(img));
    expect([out.width, out.height, out.depth]).toEqual([300, 257, 16]);
    expect(out.pixels).toBeInstanceOf(Uint16Array);
    expect(Buffer.from(out.pixels.buffer, out.pixels.byteOffset, out.pixels.byteLength).equals(Buffer.from(img.pixels.buffer))).toBe(true);
  });

  it('round-trips a 16-bit LZW TIFF bit-exactly', async () => {
    const img = random16(260, 300, 2);
    const tiff = await sharp(img.pixels, { raw: { width: 260, height: 300, channels: 1 } }).toColourspace('grey16').tiff({ compression: 'lzw' }).toBuffer();
    const out = await decodeFrame(tiff);
    expect(out.depth).toBe(16);
    expect(Array.from(out.pixels)).toEqual(Array.from(img.pixels));
  });
});

/** A grey TIFF by hand: either byte order, strips of rowsPerStrip rows placed after the directory. */
function tiffFile(img: Image, o: { le: boolean; rowsPerStrip: number; photometric?: number; tile?: boolean }): Buffer {
  const { width, height, depth } = img;
  const bytesPerSample = depth / 8;
  const strips = Math.ceil(height / o.rowsPerStrip);
  const entries: [number, number, number[]][] = [
    [256, 4, [width]],
    [257, 4, [height]],
    [258, 3, [depth]],
    [259, 3, [1]],
    [262, 3, [o.photometric ?? 1]],
    [273, 4, []], // StripOffsets, filled below
    [277, 3, [1]],
    [278, 4, [o.rowsPerStrip]],
    [279, 4, Array.from({ length: strips }, (_, k) => Math.min(o.rowsPerStrip, height - k * o.rowsPerStrip) * width * bytesPerSample)],
    ...(o.tile ? ([[322, 4, [16]]] as [number, number, number[]][]) : []),
  ];
  const ifd = 8;
  const arrays = ifd + 2 + 12 * entries.length + 4;
  const dataAt = arrays + 2 * 4 * strips;
  const out = Buffer.alloc(dataAt + width * height * bytesPerSample);
  const w16 = (v: number, at: number) => (o.le ? out.writeUInt16LE(v, at) : out.writeUInt16BE(v, at));
  const w32 = (v: number, at: number) => (o.le ? out.writeUInt32LE(v, at) : out.writeUInt32BE(v, at));
  out.write(o.le ? 'II' : 'MM', 0, 'latin1');
  w16(42, 2);
  w32(ifd, 4);
  w16(entries.length, ifd);
  let spill = arrays;
  entries.forEach(([tag, type, values], i) => {
    if (tag === 273) values.push(...Array.from({ length: strips }, (_, k) => dataAt + k * o.rowsPerStrip * width * bytesPerSample));
    const e = ifd + 2 + 12 * i;
    w16(tag, e);
    w16(type, e + 2);
    w32(values.length, e + 4);
    if (values.length === 1) {
      if (type === 3) w16(values[0]!, e + 8);
      else w32(values[0]!, e + 8);
    } else {
      w32(spill, e + 8);
      for (const v of values) w32(v, (spill += 4) - 4);
    }
  });
  for (let i = 0; i < width * height; i++) {
    const at = dataAt + i * bytesPerSample;
    if (depth === 8) out[at] = img.pixels[i]!;
    else if (o.le) out.writeUInt16LE(img.pixels[i]!, at);
    else out.writeUInt16BE(img.pixels[i]!, at);
  }
  return out;
}

/** What sharp (libtiff) reads from a TIFF: the peer of the direct path. */
async function viaSharp(b: Buffer, depth: 8 | 16): Promise<number[]> {
  const raw = await sharp(b).toColourspace(depth === 16 ? 'grey16' : 'b-w').extractChannel(0).raw({ depth: depth === 16 ? 'ushort' : 'uchar' }).toBuffer();
  return Array.from(depth === 16 ? new Uint16Array(raw.buffer, raw.byteOffset, raw.length / 2) : raw);
}

describe('decodeFrame: baseline uncompressed grey TIFF read directly', () => {
  it('reads what sharp writes, 16- and 8-bit, to the same samples', async () => {
    for (const img of [random16(261, 300, 4), gradient8(259, 270)]) {
      const space = img.depth === 16 ? 'grey16' : 'b-w';
      const tif = await sharp(img.pixels, { raw: { width: img.width, height: img.height, channels: 1 } }).toColourspace(space).tiff({ compression: 'none' }).toBuffer();
      expect(greyTiffLayout(tif)).not.toBeNull();
      const out = await decodeFrame(tif);
      expect([out.width, out.height, out.depth]).toEqual([img.width, img.height, img.depth]);
      expect(Array.from(out.pixels)).toEqual(Array.from(img.pixels));
    }
  });

  it('reads back-to-back little-endian strips in place, and copies where it must (odd offset, gaps)', async () => {
    const img = random16(260, 270, 8);
    const tif = tiffFile(img, { le: true, rowsPerStrip: 9 });
    const out = await decodeFrame(tif);
    expect(out.pixels.buffer).toBe(tif.buffer);
    expect(Array.from(out.pixels)).toEqual(Array.from(img.pixels));
    // The same file one byte into a larger buffer: its samples are no longer 2-byte aligned.
    const shifted = Buffer.alloc(tif.length + 1);
    tif.copy(shifted, 1);
    const odd = await decodeFrame(shifted.subarray(1));
    expect(odd.pixels.buffer).not.toBe(shifted.buffer);
    expect(Array.from(odd.pixels)).toEqual(Array.from(img.pixels));
  });

  it('agrees with libtiff on big- and little-endian files cut into strips (the last one short)', async () => {
    const img = random16(263, 301, 5);
    for (const le of [true, false]) {
      const tif = tiffFile(img, { le, rowsPerStrip: 7 });
      expect(greyTiffLayout(tif)?.strips.length).toBe(2 * 43);
      const out = await decodeFrame(tif);
      expect(Array.from(out.pixels)).toEqual(Array.from(img.pixels));
      expect(Array.from(out.pixels)).toEqual(await viaSharp(tif, 16));
    }
  });

  it('leaves compressed, tiled, white-is-zero and short-stripped TIFFs to sharp', async () => {
    const img = random16(260, 280, 6);
    const lzw = await sharp(img.pixels, { raw: { width: 260, height: 280, channels: 1 } }).toColourspace('grey16').tiff({ compression: 'lzw' }).toBuffer();
    expect(greyTiffLayout(lzw)).toBeNull();
    expect(greyTiffLayout(tiffFile(img, { le: true, rowsPerStrip: 280, tile: true }))).toBeNull();
    expect(greyTiffLayout(tiffFile(img, { le: true, rowsPerStrip: 280, photometric: 0 }))).toBeNull();
    const whole = tiffFile(img, { le: true, rowsPerStrip: 10 });
    const cut = whole.subarray(0, whole.length - 100);
    expect(greyTiffLayout(cut)).toBeNull();
    expect(await reason(cut)).toMatch(/^DECODE_ERROR/);
  });
});

describe('decodeFrame: 16-bit grey stored as RGB or with alpha', () => {
  it('keeps every bit of grey in a 16-bit RGB PNG and of a grey+alpha PNG', async () => {
    const img = random16(260, 256, 4);
    const rgb = new Uint16Array(img.pixels.length * 3);
    img.pixels.forEach((v, i) => rgb.fill(v, 3 * i, 3 * i + 3));
    const fromRgb = await decodeFrame(await sharp(rgb, { raw: { width: 260, height: 256, channels: 3 } }).toColourspace('rgb16').png().toBuffer());
    expect(fromRgb.depth).toBe(16);
    expect(Array.from(fromRgb.pixels)).toEqual(Array.from(img.pixels));
    const ga = new Uint16Array(img.pixels.length * 2).fill(65535);
    img.pixels.forEach((v, i) => (ga[2 * i] = v));
    const fromGa = await decodeFrame(await sharp(ga, { raw: { width: 260, height: 256, channels: 2 } }).toColourspace('grey16').png().toBuffer());
    expect(Array.from(fromGa.pixels)).toEqual(Array.from(img.pixels));
  });
});

describe('decodeFrame: 8-bit formats', () => {
  it('round-trips an 8-bit PNG exactly and reads grey stored as RGB', async () => {
    const img = gradient8(256, 300);
    expect(Array.from((await decodeFrame(await encodePng(img))).pixels)).toEqual(Array.from(img.pixels));
    const rgb = Buffer.alloc(256 * 300 * 3);
    img.pixels.forEach((v, i) => rgb.fill(v, 3 * i, 3 * i + 3));
    const out = await decodeFrame(await sharp(rgb, { raw: { width: 256, height: 300, channels: 3 } }).png().toBuffer());
    expect([out.depth, out.pixels.length]).toEqual([8, 256 * 300]);
    expect(Array.from(out.pixels)).toEqual(Array.from(img.pixels));
  });

  it('reads a grey JPEG close to its source', async () => {
    const img = gradient8(320, 256);
    const jpg = await sharp(img.pixels, { raw: { width: 320, height: 256, channels: 1 } }).jpeg({ quality: 95 }).toBuffer();
    const out = await decodeFrame(jpg);
    expect([out.width, out.height, out.depth]).toEqual([320, 256, 8]);
    let err = 0;
    out.pixels.forEach((v, i) => (err += Math.abs(v - img.pixels[i]!)));
    expect(err / out.pixels.length).toBeLessThan(2);
  });

  it('reads an 8-bit palette BMP (bottom-up, padded rows) through its palette', async () => {
    const palette = Array.from({ length: 256 }, (_, i) => [255 - i, 255 - i, 255 - i]);
    const out = await decodeFrame(bmp(257, 258, { palette, index: (x, y) => (x + y) % 256 }));
    expect([out.width, out.height, out.depth]).toEqual([257, 258, 8]);
    expect(out.pixels[0]).toBe(255);
    expect(out.pixels[5 * 257 + 7]).toBe(255 - 12);
    expect(out.pixels[257 * 258 - 1]).toBe(255 - ((256 + 257) % 256));
  });

  it('reads 24-bit BMPs bottom-up and top-down', async () => {
    const f = (x: number, y: number) => (x * 3 + y) % 256;
    for (const topDown of [false, true]) {
      const out = await decodeFrame(bmp(259, 256, { rgb: (x, y) => [f(x, y), f(x, y), f(x, y)], topDown }));
      expect([out.width, out.height, out.depth]).toEqual([259, 256, 8]);
      expect(out.pixels[10 * 259 + 20]).toBe(f(20, 10));
      expect(out.pixels[255 * 259 + 258]).toBe(f(258, 255));
    }
  });
});

describe('decodeFrame: bad files become typed FrameErrors', () => {
  it('DECODE_ERROR for empty, not-an-image, truncated PNG and truncated BMP', async () => {
    expect(await reason(new Uint8Array(0))).toMatch(/^DECODE_ERROR: the file is empty/);
    expect(await reason(Buffer.from('hello, this is not a frame'))).toMatch(/^DECODE_ERROR: not a readable image/);
    const png = await encodePng(random16(300, 300, 3));
    expect(await reason(png.subarray(0, png.length >> 1))).toMatch(/^DECODE_ERROR/);
    const b = bmp(256, 256, { rgb: () => [9, 9, 9] });
    expect(await reason(b.subarray(0, 1000))).toMatch(/^DECODE_ERROR: BMP: pixel data is truncated/);
    expect(await reason(b.subarray(0, 30))).toMatch(/^DECODE_ERROR: BMP: truncated header/);
  });

  it('FRAME_TOO_LARGE from the header alone (PNG, BMP) and for custom limits', async () => {
    expect(await reason(pngHeaderOnly(9000, 300))).toMatch(/^FRAME_TOO_LARGE: 9000x300 exceeds .* 8192/);
    const big = bmp(256, 256, { rgb: () => [1, 1, 1] });
    new DataView(big.buffer).setInt32(18, 20000, true);
    expect(await reason(big)).toMatch(/^FRAME_TOO_LARGE: 20000x256/);
    expect(await reason(await encodePng(gradient8(300, 280)), { minSide: 1, maxSide: 299 })).toMatch(/^FRAME_TOO_LARGE: 300x280/);
  });

  it('BAD_FRAME for colour, too small frames', async () => {
    const colour = Buffer.alloc(256 * 256 * 3);
    for (let i = 0; i < 256 * 256; i++) colour.set([i % 256, 40, 200], 3 * i);
    expect(await reason(await sharp(colour, { raw: { width: 256, height: 256, channels: 3 } }).png().toBuffer())).toMatch(/^BAD_FRAME: a colour frame/);
    expect(await reason(bmp(256, 256, { rgb: (x) => [x, 0, 255 - x] }))).toMatch(/^BAD_FRAME: a colour BMP/);
    const palette = Array.from({ length: 256 }, (_, i) => [i, 0, 0]);
    expect(await reason(bmp(256, 256, { palette, index: () => 1 }))).toMatch(/^BAD_FRAME: a colour-palette BMP/);
    expect(await reason(await encodePng(gradient8(100, 300)))).toMatch(/^BAD_FRAME: 100x300 is smaller than .* 256/);
  });
});
