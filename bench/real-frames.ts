// The real frames in ../shared/real-frames: their orientation and their authors' boxes.
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { boxContains, boxIntersection, iou } from '../src/eval/metrics.ts';
import { decodeFrame } from '../src/frame/decode.ts';
import type { Pipeline } from '../src/inspect/pipeline.ts';
import type { Box, Orientation, Result } from '../src/types.ts';

/** The frames carry no orientation: tips point left in the two 864 x 1536 line exports (2022...)
 *  and the BMP, right in the others (by eye). */
export function realOrientation(name: string): Orientation {
  return name.startsWith('2022') || name.endsWith('.BMP') ? 'tips-left' : 'tips-right';
}

/** The line's own verdict where the name carries one (`NG` or `OK` as a word of it), else null. */
export function lineVerdict(name: string): 'PASS' | 'FAIL' | null {
  if (/(^|[^A-Za-z])NG([^A-Za-z]|$)/.test(name)) return 'FAIL';
  if (/(^|[^A-Za-z])OK([^A-Za-z]|$)/.test(name)) return 'PASS';
  return null;
}

/** What the shipped model must do on the real frames (test/real-frames.test.ts), and what a
 *  training epoch must do to be considered (training/real_gate.sh): no ERROR, every frame the line
 *  named NG judged FAIL, every pole inside the authors' box on at least `minAllInside` frames. */
export const REAL_FRAME_GATE = { minAllInside: 32 } as const;

export function passesRealFrameGate(s: { errors: number; namedNg: number; ngFail: number; allInside: number }): boolean {
  return s.errors === 0 && s.ngFail === s.namedNg && s.allInside >= REAL_FRAME_GATE.minAllInside;
}

/** The dataset authors' box of the poles of each real frame, [x, y, w, h] in its pixels. */
export function authorsBoxes(realDir: string): Record<string, Box> {
  return (JSON.parse(readFileSync(path.join(realDir, 'roi-boxes.json'), 'utf8')) as { boxes: Record<string, Box> }).boxes;
}

/** The share of `box` that `roi` covers (0 without a roi). */
export function covers(roi: Box | null, box: Box): number {
  return roi ? boxIntersection(roi, box) / (box[2] * box[3]) : 0;
}

/** How a judged frame sits in the authors' box: IoU of its roi, the share of the box the roi
 *  covers, and how many of its poles lie inside the box. */
export function againstAuthorsBox(result: Pick<Result, 'roi' | 'poles'>, box: Box): { iou: number; covers: number; polesInside: number } {
  return {
    iou: result.roi ? iou(result.roi, box) : 0,
    covers: covers(result.roi, box),
    polesInside: result.poles.filter((q) => boxContains(box, q.x, q.y)).length,
  };
}

/** Each real frame judged by `pipeline` in its orientation, in name order. */
export async function* judgeRealFrames(pipeline: Pipeline, realDir: string): AsyncGenerator<{ name: string; result: Result }> {
  for (const [seq, name] of readdirSync(path.join(realDir, 'images')).sort().entries()) {
    const image = await decodeFrame(readFileSync(path.join(realDir, 'images', name)));
    yield { name, result: await pipeline.judge({ frame: name, cellId: null, image, orientation: realOrientation(name) }, { id: `real-${seq}`, seq, ts: new Date().toISOString() }) };
  }
}
