// The whole pipeline (defaults) on the real frames against their authors' boxes, which are the
// only truth they carry: the result's roi (IoU, share of the box covered) and how many poles lie
// inside the box, per frame and in sum. No labels: a pole inside the box may still sit on the
// wrong sheet, but one outside it is wrong.
// Usage: npx tsx bench/real-pipeline.ts [--real ../shared/real-frames]
import { parseArgs } from 'node:util';
import { Pipeline } from '../src/inspect/pipeline.ts';
import { againstAuthorsBox, authorsBoxes, judgeRealFrames } from './real-frames.ts';

const { values: opt } = parseArgs({ options: { real: { type: 'string', default: '../shared/real-frames' } } });
const boxes = authorsBoxes(opt.real);
const pipeline = await Pipeline.load({ providers: ['cpu'] });
console.log(`# the pipeline on the real frames against the authors' boxes: model ${pipeline.model.name} (${pipeline.model.sha256.slice(0, 8)}), defaults`);
console.log('| frame | verdict | reasons | roi IoU | box covered | poles inside the box |');
console.log('|---|---|---|---|---|---|');
const sum = { frames: 0, errors: 0, iou: 0, covers90: 0, allInside: 0 };
for await (const { name, result: r } of judgeRealFrames(pipeline, opt.real)) {
  const box = boxes[name];
  if (!box) throw new Error(`${name}: no box in roi-boxes.json`);
  const a = againstAuthorsBox(r, box);
  sum.frames++;
  if (r.verdict === 'ERROR') sum.errors++;
  sum.iou += a.iou;
  if (a.covers >= 0.9) sum.covers90++;
  if (r.poles.length > 0 && a.polesInside === r.poles.length) sum.allInside++;
  console.log(`| ${name} | ${r.verdict} | ${r.reasons.join(', ')} | ${a.iou.toFixed(2)} | ${(100 * a.covers).toFixed(0)}% | ${a.polesInside} of ${r.poles.length} |`);
}
await pipeline.close();
console.log(`\n${sum.frames} frames, ${sum.errors} ERROR; roi IoU mean ${(sum.iou / sum.frames).toFixed(3)}; the roi covers >= 90% of the box on ${sum.covers90}; every pole inside the box on ${sum.allInside}`);
