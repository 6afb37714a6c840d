// The real frames in ../shared/real-frames: their orientation and their authors' boxes.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import type { Box, Orientation, Result } from '../src/types.ts';

/** The frames carry no orientation: tips point left in the two 864 x 1536 line exports (2022...)
 *  and the BMP, right in the others (by eye). */
export function realOrientation(name: string): Orientation {
  return name.startsWith('2022') || name.endsWith('.BMP') ? 'tips-left' : 'tips-right';
}

/** The dataset authors' box of the poles of each real frame, [x, y, w, h] in its pixels. */
export function authorsBoxes(realDir: string): Record<string, Box> {
  return (JSON.parse(readFileSync(path.join(realDir, 'roi-boxes.json'), 'utf8')) as { boxes: Record<string, Box> }).boxes;
}

/** How a judged frame sits in the authors' box: IoU of its roi, the share of the box the roi
 *  covers, and how many of its poles lie inside the box. */
export function againstAuthorsBox(result: Pick<Result, 'roi' | 'poles'>, box: Box): { iou: number; covers: number; polesInside: number } {
  const inside = result.poles.filter((q) => q.x >= box[0] && q.x <= box[0] + box[2] && q.y >= box[1] && q.y <= box[1] + box[3]).length;
  if (!result.roi) return { iou: 0, covers: 0, polesInside: inside };
  const [a, b] = [result.roi, box];
  const w = Math.max(0, Math.min(a[0] + a[2], b[0] + b[2]) - Math.max(a[0], b[0]));
  const h = Math.max(0, Math.min(a[1] + a[3], b[1] + b[3]) - Math.max(a[1], b[1]));
  const common = w * h;
  return { iou: common / (a[2] * a[3] + b[2] * b[3] - common), covers: common / (b[2] * b[3]), polesInside: inside };
}
