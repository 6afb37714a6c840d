import type { Image } from '../types.ts';

/** The frame at (x, y), interpolated bilinearly, with coordinates clamped to the frame's edges. */
export function sampleBilinear(img: Image, x: number, y: number): number {
  const { width, height, pixels } = img;
  const cx = Math.min(Math.max(x, 0), width - 1);
  const cy = Math.min(Math.max(y, 0), height - 1);
  const x0 = Math.floor(cx);
  const y0 = Math.floor(cy);
  const x1 = Math.min(x0 + 1, width - 1);
  const y1 = Math.min(y0 + 1, height - 1);
  const fx = cx - x0;
  const fy = cy - y0;
  const r0 = y0 * width;
  const r1 = y1 * width;
  const top = pixels[r0 + x0]! * (1 - fx) + pixels[r0 + x1]! * fx;
  const bottom = pixels[r1 + x0]! * (1 - fx) + pixels[r1 + x1]! * fx;
  return top * (1 - fy) + bottom * fy;
}
