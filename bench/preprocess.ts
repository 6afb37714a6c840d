// Times the model-contract crop (addon) against the same crop done with sharp
// (extract + resize with a box kernel on the raw 16-bit frame, then z-score in JS).
// Usage: npx tsx bench/preprocess.ts
import sharp from 'sharp';
import { cropForModel } from '../src/vision/preprocess.ts';
import type { Box, Image } from '../src/types.ts';

const W = 1600;
const H = 1600;
const img: Image = { width: W, height: H, depth: 16, pixels: new Uint16Array(W * H) };
for (let i = 0; i < img.pixels.length; i++) img.pixels[i] = (i * 2654435761) >>> 20;
const boxes: Box[] = [[700, 600, 160, 280], [500, 400, 400, 700]];
const size = { width: 128, height: 256 };
const reps = 50;

for (const box of boxes) {
  let t = performance.now();
  for (let r = 0; r < reps; r++) cropForModel(img, box, 'tips-right', size);
  const ours = (performance.now() - t) / reps;

  const raw = sharp(Buffer.from(img.pixels.buffer), { raw: { width: W, height: H, channels: 1 } });
  t = performance.now();
  for (let r = 0; r < reps; r++) {
    const out = await raw
      .clone()
      .extract({ left: Math.round(box[0]), top: Math.round(box[1]), width: Math.round(box[2]), height: Math.round(box[3]) })
      .resize(size.width, size.height, { fit: 'fill', kernel: 'linear' })
      .raw({ depth: 'ushort' })
      .toBuffer();
    const v = new Uint16Array(out.buffer, out.byteOffset, out.byteLength / 2);
    const f = Float32Array.from(v);
    let m = 0;
    for (const x of f) m += x / f.length;
    let s = 0;
    for (const x of f) s += (x - m) ** 2 / f.length;
    const inv = 1 / Math.sqrt(s);
    for (let i = 0; i < f.length; i++) f[i] = (f[i]! - m) * inv;
  }
  const viaSharp = (performance.now() - t) / reps;
  console.log(`ROI ${box[2]}x${box[3]} of a ${W}x${H} 16-bit frame: addon ${ours.toFixed(2)} ms, sharp ${viaSharp.toFixed(2)} ms`);
}
