// The ablation of the paper's Table 1 on a COCO dataset: HRNet alone vs + corner refinement with
// N = 128, 256, 512 corners, each with argmax and DARK decoding, plus refinement variants
// (radius, sub-pixel corners), and the polish model (thirteenth session) on top. Every row decodes in
// the sheets' order (pipeline.sheetOrder, twenty-third session) but one, the default without it.
// One model pass per frame; every variant decodes the same heatmaps.
// Usage: npx tsx bench/ablation.ts --dataset DIR [--model FILE] [--limit N] [--json OUT]
import { writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { evaluate, type VariantScore } from '../src/cli/eval.ts';
import { readCocoDataset } from '../src/eval/coco.ts';
import { DEFAULT_PIPELINE_OPTIONS, Pipeline, type Variant } from '../src/inspect/pipeline.ts';
import { DEFAULT_REFINE_PARAMS } from '../src/vision/refine.ts';

const { values } = parseArgs({
  options: { dataset: { type: 'string' }, model: { type: 'string' }, limit: { type: 'string' }, json: { type: 'string' } },
});
if (!values.dataset) throw new Error('usage: tsx bench/ablation.ts --dataset DIR [--model FILE] [--limit N] [--json OUT]');
const pipeline = await Pipeline.load({
  modelPath: values.model ?? DEFAULT_PIPELINE_OPTIONS.modelPath,
  providers: ['cpu'],
  intraOpNumThreads: 2,
  corners: 512,
});
const rows: { name: string; v: Variant }[] = [];
// The paper's rows without the polish; it comes last, alone and with the corners (the default).
const base = { ...pipeline.variant(), polish: false };
for (const decode of ['argmax', 'dark'] as const) {
  rows.push({ name: `HRNet (${decode})`, v: { ...base, decode, refine: false } });
  for (const n of [128, 256, 512]) rows.push({ name: `+ corners N=${n} (${decode})`, v: { ...base, decode, refine: true, corners: n } });
}
for (const radius of [1, 2, 3, 4, 6].filter((r) => r !== base.refineParams.radius)) {
  rows.push({ name: `+ corners N=512 (dark), r=${radius}`, v: { ...base, decode: 'dark', refine: true, corners: 512, refineParams: { ...DEFAULT_REFINE_PARAMS, radius } } });
}
// Offsets calibrated by bench/corner-bias.ts on seeds 9000..9029 (never the test set).
const cornerOffset = { A: [2.2, -0.05] as [number, number], C: [0.55, -0.05] as [number, number] };
for (const radius of [4, 6]) {
  rows.push({ name: `+ corners N=512 (dark), r=${radius}, offset-corrected corners`, v: { ...base, decode: 'dark', refine: true, corners: 512, refineParams: { ...DEFAULT_REFINE_PARAMS, radius, cornerOffset } } });
}
rows.push({ name: '+ corners N=512 (dark), sub-pixel corners', v: { ...base, decode: 'dark', refine: true, corners: 512, refineParams: { ...DEFAULT_REFINE_PARAMS, subpixel: true } } });
rows.push({ name: 'HRNet (dark) + polish', v: { ...base, decode: 'dark', refine: false, polish: true } });
rows.push({ name: '+ corners N=512 (dark) + polish, each channel at its own peak (no sheet order)', v: { ...pipeline.variant(), corners: 512, sheetOrder: false } });
rows.push({ name: '+ corners N=512 (dark) + polish (the default)', v: { ...pipeline.variant(), corners: 512 } });

const dataset = readCocoDataset(values.dataset);
const t0 = performance.now();
const scores = await evaluate(pipeline, dataset, rows.map((r) => r.v), {
  limit: values.limit ? Number(values.limit) : undefined,
  onProgress: (d, n) => {
    if (d % 50 === 0 || d === n) process.stderr.write(`ablation ${d}/${n} ${((performance.now() - t0) / d).toFixed(0)} ms/frame\n`);
  },
});
await pipeline.close();

const f = (v: number | null, d = 3) => (v === null ? 'n/a' : v.toFixed(d));
const gain = (v: number | null, ref: number | null, lowerBetter: boolean) =>
  v === null || ref === null || ref === 0 ? '' : ` (${((lowerBetter ? ref - v : v - ref) / ref * 100 >= 0 ? '+' : '')}${(((lowerBetter ? ref - v : v - ref) / ref) * 100).toFixed(1)}%)`;
const lines = [
  `dataset ${values.dataset}, ${scores[0]!.report.images} frames, model ${pipeline.model.name} ${pipeline.model.sha256.slice(0, 12)}; ERROR frames ${scores[0]!.errors}; NME over judged frames`,
  '',
  '| method | NME | PCK@0.5 | PCK@1.0 | PCS@0.5 | PCS@1.0 | overkill | escape |',
  '|---|---|---|---|---|---|---|---|',
];
rows.forEach((r, i) => {
  const s: VariantScore = scores[i]!;
  const ref = scores[r.v.decode === 'argmax' ? 0 : 4]!;
  const rel = r.v.refine || r.v.polish;
  lines.push(
    `| ${r.name} | ${f(s.nmeJudged)}${rel ? gain(s.nmeJudged, ref.nmeJudged, true) : ''} | ${f(s.report['pck@0.5'])}${rel ? gain(s.report['pck@0.5'], ref.report['pck@0.5'], false) : ''} | ${f(s.report['pck@1.0'])} | ${f(s.report['pcs@0.5'])}${rel ? gain(s.report['pcs@0.5'], ref.report['pcs@0.5'], false) : ''} | ${f(s.report['pcs@1.0'])} | ${f(s.report.overkill, 4)} | ${f(s.report.escape, 4)} |`,
  );
});
lines.push('', `ROI recall ${f(scores[0]!.report.roiRecall, 4)}; ${((performance.now() - t0) / scores[0]!.report.images).toFixed(0)} ms per frame for all variants`);
process.stdout.write(lines.join('\n') + '\n');
if (values.json) writeFileSync(values.json, JSON.stringify(rows.map((r, i) => ({ name: r.name, ...scores[i] })), null, 2));
