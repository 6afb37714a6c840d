// The shipped model and the pipeline's defaults on the 34 real frames, against the only truth they
// carry: the dataset authors' box around the poles, and the line's verdict in some names (NG).
// Figures and per-frame rows: `npx tsx bench/real-pipeline.ts`.
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Pipeline } from '../src/inspect/pipeline.ts';
import type { Result } from '../src/types.ts';
import { againstAuthorsBox, authorsBoxes, judgeRealFrames, lineVerdict } from '../bench/real-frames.ts';

const REAL = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../shared/real-frames');
if (!existsSync(REAL)) console.warn(`real-frames.test: skipped: ${REAL} not found`);

describe("the line's verdict in a real frame's name", () => {
  it('reads NG and OK as words of the name, nothing else', () => {
    expect(lineVerdict('13-48-42__NULL_1_1_NG_lose_point.JPG')).toBe('FAIL');
    expect(lineVerdict('20220905-09-25-23-693_SN22341003D4_NG-4_guanyu-tip.jpg')).toBe('FAIL');
    expect(lineVerdict('YXTP00311-OK-20210705085106848-2_duofuduo_sangdun-clear.jpg')).toBe('PASS');
    expect(lineVerdict('14-10-42__NULL_1_1_duofuduo_sangdun-clear.JPG')).toBeNull();
    // Letters around them make another word: not a verdict.
    expect(lineVerdict('16-44-44__NULL_1_1_LONG_TOKEN.JPG')).toBeNull();
  });
});

describe.skipIf(!existsSync(REAL))('the pipeline on the real frames (../shared/real-frames)', () => {
  let pipeline: Pipeline;
  const judged = new Map<string, Result>();

  beforeAll(async () => {
    pipeline = await Pipeline.load({ providers: ['cpu'] });
    for await (const { name, result } of judgeRealFrames(pipeline, REAL)) judged.set(name, result);
  }, 180_000);
  afterAll(async () => pipeline?.close());

  it('judges every frame, and FAILs every frame the line named NG', () => {
    expect(judged.size).toBe(34);
    for (const [name, r] of judged) {
      expect(r.verdict, name).not.toBe('ERROR');
      if (lineVerdict(name) === 'FAIL') expect(r.verdict, name).toBe('FAIL');
    }
  });

  it("puts every pole inside the authors' box on at least 32 of the 34 frames (33 measured), its box over theirs", () => {
    const boxes = authorsBoxes(REAL);
    let allInside = 0;
    let iou = 0;
    for (const [name, r] of judged) {
      const a = againstAuthorsBox(r, boxes[name]!);
      if (a.polesInside === r.poles.length) allInside++;
      iou += a.iou;
    }
    expect(allInside).toBeGreaterThanOrEqual(32);
    // The result's box (the second pass's) against theirs: 0.735 measured.
    expect(iou / judged.size).toBeGreaterThan(0.65);
  });
});
