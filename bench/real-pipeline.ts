// The whole pipeline (defaults) on the real frames against their authors' boxes, which are the
// only truth they carry: the result's roi (IoU, share of the box covered) and how many poles lie
// inside the box, per frame and in sum. No labels: a pole inside the box may still sit on the
// wrong sheet, but one outside it is wrong.
// The names carry the line's own verdict on some frames (NG, OK): how many of those agree is shown
// too. --json ends with one JSON line of the sums and whether they pass REAL_FRAME_GATE, for
// training/real_gate.sh. --no-sheet-count-check judges with pipeline.sheetCountCheck off: every real
// stack has more sheets than the recipe, so with the check every frame FAILs, and only without it
// do the verdicts say something about the model (the gate runs so). --no-sheet-order decodes each
// channel at its own argmax (pipeline.sheetOrder off).
// Usage: npx tsx bench/real-pipeline.ts [--real ../shared/real-frames] [--model models/xpole-hrnet.onnx] [--no-sheet-count-check] [--no-sheet-order] [--json]
import path from 'node:path';
import { parseArgs } from 'node:util';
import { Pipeline } from '../src/inspect/pipeline.ts';
import { againstAuthorsBox, authorsBoxes, judgeRealFrames, lineVerdict, passesRealFrameGate } from './real-frames.ts';

const { values: opt } = parseArgs({
  options: {
    real: { type: 'string', default: '../shared/real-frames' },
    model: { type: 'string' },
    'no-sheet-count-check': { type: 'boolean', default: false },
    'no-sheet-order': { type: 'boolean', default: false },
    json: { type: 'boolean', default: false },
  },
});
const boxes = authorsBoxes(opt.real);
const sheetCountCheck = !opt['no-sheet-count-check'];
const sheetOrder = !opt['no-sheet-order'];
const off = [sheetCountCheck ? '' : 'the sheet-count check', sheetOrder ? '' : 'the sheet order'].filter(Boolean);
const pipeline = await Pipeline.load({ providers: ['cpu'], sheetCountCheck, sheetOrder, ...(opt.model ? { modelPath: path.resolve(opt.model) } : {}) });
console.log(
  `# the pipeline on the real frames against the authors' boxes: model ${pipeline.model.name} (${pipeline.model.sha256.slice(0, 8)}), defaults${off.length ? ` but ${off.join(' and ')} off` : ''}`,
);
console.log('| frame | verdict | reasons | roi IoU | box covered | poles inside the box |');
console.log('|---|---|---|---|---|---|');
const sum = { frames: 0, errors: 0, iou: 0, covers90: 0, allInside: 0, pass: 0, fail: 0, namedNg: 0, ngFail: 0, namedOk: 0, okPass: 0 };
for await (const { name, result: r } of judgeRealFrames(pipeline, opt.real)) {
  const box = boxes[name];
  if (!box) throw new Error(`${name}: no box in roi-boxes.json`);
  const a = againstAuthorsBox(r, box);
  sum.frames++;
  if (r.verdict === 'ERROR') sum.errors++;
  if (r.verdict === 'PASS') sum.pass++;
  if (r.verdict === 'FAIL') sum.fail++;
  const line = lineVerdict(name);
  if (line === 'FAIL') sum.namedNg++;
  if (line === 'FAIL' && r.verdict === 'FAIL') sum.ngFail++;
  if (line === 'PASS') sum.namedOk++;
  if (line === 'PASS' && r.verdict === 'PASS') sum.okPass++;
  sum.iou += a.iou;
  if (a.covers >= 0.9) sum.covers90++;
  if (r.poles.length > 0 && a.polesInside === r.poles.length) sum.allInside++;
  console.log(`| ${name} | ${r.verdict} | ${r.reasons.join(', ')} | ${a.iou.toFixed(2)} | ${(100 * a.covers).toFixed(0)}% | ${a.polesInside} of ${r.poles.length} |`);
}
await pipeline.close();
console.log(`\n${sum.frames} frames: PASS ${sum.pass}, FAIL ${sum.fail}, ERROR ${sum.errors}; roi IoU mean ${(sum.iou / sum.frames).toFixed(3)}; the roi covers >= 90% of the box on ${sum.covers90}; every pole inside the box on ${sum.allInside}`);
console.log(`the line's verdict in the name: NG judged FAIL on ${sum.ngFail} of ${sum.namedNg}, OK judged PASS on ${sum.okPass} of ${sum.namedOk}`);
if (opt.json) console.log(JSON.stringify({ model: pipeline.model.sha256, ...sum, iou: sum.iou / sum.frames, gate: passesRealFrameGate(sum) }));
