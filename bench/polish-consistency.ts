// Does the pole polish know where the apex is on these frames? A label-free check.
//   npx tsx bench/polish-consistency.ts --dataset DIR [--count N]   a SPEC COCO dataset
//   npx tsx bench/polish-consistency.ts --real ../shared/real-frames  the real frames, one line each
// The polisher was trained to move a pole onto the apex it sees (vision/polish.ts). Where it has
// learnt the frames, its output is a fixed point: polished again, a pole barely moves, and started
// from points displaced around it, it lands on the same spot. So two figures per pole, after the
// pipeline has judged the frame with its defaults:
//   second move: how far a second polish would move the polished pole (uncapped, px);
//   spread: started 1.5 px ahead, behind, and 1.2 px to either side, the mean distance of the four
//   landing points from their centroid (px).
// Each frame's median of each is printed per set as p50 / p90 / p99 over the frames, with the share
// of frames whose median second move passes 0.3 px (about the 99th percentile on synthetic frames).
import { readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { intOption, parse } from '../src/cli/args.ts';
import { readCocoDataset } from '../src/eval/coco.ts';
import { decodeFrame } from '../src/frame/decode.ts';
import { canonicalAffine } from '../src/frame/orientation.ts';
import { Pipeline } from '../src/inspect/pipeline.ts';
import type { Image, Orientation } from '../src/types.ts';
import { PolishModel } from '../src/vision/model.ts';
import { polishPatches } from '../src/vision/polish.ts';
import { realOrientation } from './real-frames.ts';

const { values } = parse(process.argv.slice(2), {
  dataset: { type: 'string' },
  real: { type: 'string' },
  count: { type: 'string' },
});
if (!values.dataset === !values.real) throw new Error('give one of --dataset DIR or --real DIR');
const count = intOption(values.count, 'count', 1_000_000, 1, 1_000_000);
/** Frame-median second move above which a frame counts as outside what the polisher learnt. */
const OUTSIDE_PX = 0.3;
/** Displaced starts, canonical (along the sheets, across). */
const STARTS = [[1.5, 0], [-1.5, 0], [0, 1.2], [0, -1.2]] as const;

interface Sample {
  name: string;
  image: Image;
  orientation: Orientation;
}

async function* samples(): AsyncGenerator<Sample> {
  if (values.dataset) {
    for (const img of readCocoDataset(values.dataset).images.slice(0, count)) {
      yield { name: img.fileName, image: await decodeFrame(readFileSync(img.file)), orientation: img.orientation };
    }
    return;
  }
  for (const name of readdirSync(path.join(values.real!, 'images')).sort().slice(0, count)) {
    yield { name, image: await decodeFrame(readFileSync(path.join(values.real!, 'images', name))), orientation: realOrientation(name) };
  }
}

const median = (v: number[]) => quantile(v, 0.5);
function quantile(v: number[], q: number): number {
  const s = [...v].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.round(q * (s.length - 1)))]!;
}

async function main(): Promise<void> {
  const pipeline = await Pipeline.load({ providers: ['cpu'], log: () => {} });
  const polisher = await PolishModel.load({ providers: ['cpu'], intraOpNumThreads: 1, modelPath: pipeline.options.polishModelPath });
  const sheets = pipeline.options.recipe.sheets;
  const all = sheets.map((_, i) => i);
  const offsetsAt = (s: Sample, x: ArrayLike<number>, y: ArrayLike<number>) =>
    polisher.run(polishPatches(s.image, s.orientation, x, y, sheets, all, polisher.card.input), all.length);
  const secondMoves: number[] = [];
  const spreads: number[] = [];
  let judged = 0;
  let unjudged = 0;
  for await (const s of samples()) {
    const j = await pipeline.judgeDetailed({ frame: s.name, cellId: null, image: s.image, orientation: s.orientation }, { id: s.name, seq: judged + unjudged, ts: '' });
    if (!j.poles) {
      unjudged++;
      continue;
    }
    judged++;
    const { x, y } = j.poles;
    const again = await offsetsAt(s, x, y);
    const second = all.map((i) => Math.hypot(again[2 * i]!, again[2 * i + 1]!));
    // Landing points of the displaced starts, canonical, relative to the polished pole.
    const { exx, exy, eyx, eyy } = canonicalAffine(s.image.width, s.image.height, s.orientation);
    const landings: number[][] = [];
    for (const [du, dv] of STARTS) {
      const o = await offsetsAt(s, x.map((v) => v + du * exx + dv * eyx), y.map((v) => v + du * exy + dv * eyy));
      landings.push(all.flatMap((i) => [du + o[2 * i]!, dv + o[2 * i + 1]!]));
    }
    const spread = all.map((i) => {
      const cu = landings.reduce((a, l) => a + l[2 * i]!, 0) / landings.length;
      const cv = landings.reduce((a, l) => a + l[2 * i + 1]!, 0) / landings.length;
      return landings.reduce((a, l) => a + Math.hypot(l[2 * i]! - cu, l[2 * i + 1]! - cv), 0) / landings.length;
    });
    secondMoves.push(median(second));
    spreads.push(median(spread));
    if (values.real) console.log(`${s.name.slice(0, 48).padEnd(48)} ${j.result.verdict.padEnd(5)} second move ${median(second).toFixed(2)} px, spread ${median(spread).toFixed(2)} px`);
  }
  await polisher.close();
  await pipeline.close();
  const row = (v: number[]) => `p50 ${quantile(v, 0.5).toFixed(2)} / p90 ${quantile(v, 0.9).toFixed(2)} / p99 ${quantile(v, 0.99).toFixed(2)} px`;
  const outside = secondMoves.filter((v) => v > OUTSIDE_PX).length;
  console.log(`\n${values.dataset ?? values.real}: ${judged} frames with poles (${unjudged} without)`);
  console.log(`frame median of the second move: ${row(secondMoves)}`);
  console.log(`frame median of the spread from 4 displaced starts: ${row(spreads)}`);
  console.log(`frames whose median second move passes ${OUTSIDE_PX} px: ${outside} (${((100 * outside) / Math.max(1, judged)).toFixed(1)}%)`);
}

await main();
