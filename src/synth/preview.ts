// A montage of synthetic frames for people: each frame shrunk whole with its keypoints, beside a
// zoom of its reference box. RGB, built from typed arrays (the CLI encodes it).
import type { Image } from '../types.ts';
import { referenceBox } from './dataset.ts';
import type { SynthFrame } from './frame.ts';

export interface Rgb {
  width: number;
  height: number;
  data: Uint8Array;
}

const ANODE: [number, number, number] = [255, 60, 40];
const CATHODE: [number, number, number] = [40, 220, 80];
const BOX: [number, number, number] = [60, 140, 255];

/** Grey level of a pixel scaled to 0..255 (16-bit frames by their 0.5 / 99.5 percentiles). */
function toneMap(img: Image): (v: number) => number {
  if (img.depth === 8) return (v) => v;
  const sorted = Uint16Array.from(img.pixels).sort();
  const lo = sorted[Math.floor(sorted.length * 0.005)]!;
  const hi = Math.max(lo + 1, sorted[Math.floor(sorted.length * 0.995)]!);
  return (v) => Math.max(0, Math.min(255, ((v - lo) * 255) / (hi - lo)));
}

function sample(img: Image, x: number, y: number): number {
  // Bilinear at frame point (x, y), pixel centres at integers, clamped to the edge.
  const cx = Math.max(0, Math.min(img.width - 1, x));
  const cy = Math.max(0, Math.min(img.height - 1, y));
  const x0 = Math.floor(cx);
  const y0 = Math.floor(cy);
  const x1 = Math.min(img.width - 1, x0 + 1);
  const y1 = Math.min(img.height - 1, y0 + 1);
  const fx = cx - x0;
  const fy = cy - y0;
  const p = img.pixels;
  const w = img.width;
  return (p[y0 * w + x0]! * (1 - fx) + p[y0 * w + x1]! * fx) * (1 - fy) + (p[y1 * w + x0]! * (1 - fx) + p[y1 * w + x1]! * fx) * fy;
}

function put(out: Rgb, x: number, y: number, c: readonly number[]): void {
  const xi = Math.round(x);
  const yi = Math.round(y);
  if (xi < 0 || yi < 0 || xi >= out.width || yi >= out.height) return;
  const i = 3 * (yi * out.width + xi);
  out.data[i] = c[0]!;
  out.data[i + 1] = c[1]!;
  out.data[i + 2] = c[2]!;
}

/**
 * Draws region [rx, ry, rw, rh] of the frame (SPEC coordinates) into the tile at (ox, oy) of
 * size tw x th, keeping the aspect; keypoints as dots (r px), the reference box as a frame.
 */
function drawTile(out: Rgb, f: SynthFrame, region: [number, number, number, number], ox: number, oy: number, tw: number, th: number, r: number): void {
  const img = f.image;
  const tone = toneMap(img);
  const s = Math.max(region[2] / tw, region[3] / th);
  // Tile pixel (tx, ty) shows frame point (rx + (tx + 0.5) * s, ry + (ty + 0.5) * s); area sampling when shrinking.
  const taps = Math.max(1, Math.min(4, Math.ceil(s)));
  for (let ty = 0; ty < th; ty++) {
    for (let tx = 0; tx < tw; tx++) {
      let acc = 0;
      for (let j = 0; j < taps; j++) {
        for (let i = 0; i < taps; i++) {
          acc += sample(img, region[0] + (tx + (i + 0.5) / taps) * s, region[1] + (ty + (j + 0.5) / taps) * s);
        }
      }
      const g = tone(acc / (taps * taps));
      put(out, ox + tx, oy + ty, [g, g, g]);
    }
  }
  const toTile = (x: number, y: number): [number, number] => [ox + (x - region[0]) / s - 0.5, oy + (y - region[1]) / s - 0.5];
  const box = referenceBox(f.keypoints);
  const [bx0, by0] = toTile(box[0], box[1]);
  const [bx1, by1] = toTile(box[0] + box[2], box[1] + box[3]);
  for (let x = bx0; x <= bx1; x++) {
    put(out, x, by0, BOX);
    put(out, x, by1, BOX);
  }
  for (let y = by0; y <= by1; y++) {
    put(out, bx0, y, BOX);
    put(out, bx1, y, BOX);
  }
  for (let k = 0; k < f.keypoints.length / 3; k++) {
    if (!(f.keypoints[3 * k + 2]! > 0)) continue;
    const [px, py] = toTile(f.keypoints[3 * k]!, f.keypoints[3 * k + 1]!);
    const c = k % 2 === 0 ? ANODE : CATHODE;
    for (let dy = -r; dy <= r; dy++) for (let dx = -r; dx <= r; dx++) if (dx * dx + dy * dy <= r * r) put(out, px + dx, py + dy, c);
  }
}

/** `cols` x `rows` cells; each holds the whole frame and a zoom of its reference box side by side. */
export function montage(frames: readonly SynthFrame[], cols: number, tile: number): Rgb {
  const rows = Math.ceil(frames.length / cols);
  const gap = 6;
  const cellW = 2 * tile + gap;
  const out: Rgb = { width: cols * cellW + (cols - 1) * gap, height: rows * tile + (rows - 1) * gap, data: new Uint8Array(0) };
  out.data = new Uint8Array(out.width * out.height * 3).fill(255);
  frames.forEach((f, i) => {
    const ox = (i % cols) * (cellW + gap);
    const oy = Math.floor(i / cols) * (tile + gap);
    drawTile(out, f, [-0.5, -0.5, f.image.width, f.image.height], ox, oy, tile, tile, 2);
    const b = referenceBox(f.keypoints);
    const pad = 0.15 * Math.max(b[2], b[3]);
    drawTile(out, f, [b[0] - pad, b[1] - pad, b[2] + 2 * pad, b[3] + 2 * pad], ox + tile + gap, oy, tile, tile, 1);
  });
  return out;
}
