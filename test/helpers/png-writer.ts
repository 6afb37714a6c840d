// A grey PNG written byte by byte with the row filters the caller picks (PNG spec §9.2), so the
// decoder meets what other encoders write: OpenCV's Sub on every row, libpng's adaptive mix, Paeth.
import { deflateSync } from 'node:zlib';
import type { Image } from '../../src/types.ts';
import { PNG_SIGNATURE, pngChunk } from './bad-frames.ts';

/** A grey PNG whose row y uses filter filters(y) (0-4); IDAT split into `parts` chunks; `ihdr` may lie. */
export function pngWithFilters(img: Image, filters: (y: number) => number, parts = 1, ihdr: Partial<{ width: number; height: number; depth: number }> = {}): Buffer {
  const bpp = img.depth / 8;
  const rowBytes = img.width * bpp;
  const rows = Buffer.alloc((rowBytes + 1) * img.height);
  const bytesOf = (y: number) => {
    const r = Buffer.alloc(rowBytes);
    for (let x = 0; x < img.width; x++) {
      const v = img.pixels[y * img.width + x]!;
      if (bpp === 2) r.writeUInt16BE(v, 2 * x);
      else r[x] = v;
    }
    return r;
  };
  let prev = Buffer.alloc(rowBytes);
  for (let y = 0; y < img.height; y++) {
    const cur = bytesOf(y);
    const f = filters(y);
    const out = rows.subarray(y * (rowBytes + 1), (y + 1) * (rowBytes + 1));
    out[0] = f;
    for (let i = 0; i < rowBytes; i++) {
      const a = i >= bpp ? cur[i - bpp]! : 0;
      const b = prev[i]!;
      const c = i >= bpp ? prev[i - bpp]! : 0;
      let pred = 0;
      if (f === 1) pred = a;
      else if (f === 2) pred = b;
      else if (f === 3) pred = (a + b) >> 1;
      else if (f === 4) {
        const p = a + b - c;
        const pa = Math.abs(p - a), pb = Math.abs(p - b), pc = Math.abs(p - c);
        pred = pa <= pb && pa <= pc ? a : pb <= pc ? b : c;
      }
      out[1 + i] = (cur[i]! - pred) & 0xff;
    }
    prev = cur;
  }
  const z = deflateSync(rows, { level: 3 });
  const head = Buffer.alloc(13);
  head.writeUInt32BE(ihdr.width ?? img.width, 0);
  head.writeUInt32BE(ihdr.height ?? img.height, 4);
  head[8] = ihdr.depth ?? img.depth;
  const size = Math.ceil(z.length / parts);
  const idat = Array.from({ length: parts }, (_, k) => pngChunk('IDAT', z.subarray(k * size, (k + 1) * size)));
  return Buffer.concat([PNG_SIGNATURE, pngChunk('IHDR', head), ...idat, pngChunk('IEND', Buffer.alloc(0))]);
}
