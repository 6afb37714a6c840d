// Figures across SPEC's frame sizes (256 to 8192 px a side): for each size, the renderer (as
// `xpole synth --width W --height H`) draws a labelled set into a temporary folder and the
// pipeline's defaults judge it, as `xpole eval` does.
// The synthetic sets' own sizes are 1000-2048 px; this is where the rest of SPEC's range is checked.
// Usage: npx tsx bench/sizes.ts [--sizes 256x256,512x512,...] [--count N (default 300; frames of
//        4096 px or more: N / 10, at least 12)] [--seed S (default 90)] [--keep DIR]
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { evaluate } from '../src/cli/eval.ts';
import { readCocoDataset } from '../src/eval/coco.ts';
import { Pipeline } from '../src/inspect/pipeline.ts';
import { renderDataset } from '../src/synth/pool.ts';

const { values: opt } = parseArgs({
  options: {
    sizes: { type: 'string', default: '256x256,256x1024,1024x256,512x512,768x768,640x1536,1000x1000,2048x2048,4096x4096,6144x4096,8192x8192' },
    count: { type: 'string', default: '300' },
    seed: { type: 'string', default: '90' },
    keep: { type: 'string' },
  },
});
const sizes = opt.sizes.split(',').map((s) => {
  const m = /^(\d+)x(\d+)$/.exec(s.trim());
  if (!m) throw new Error(`--sizes: "${s}" is not WIDTHxHEIGHT`);
  return [Number(m[1]), Number(m[2])] as const;
});
const count = Number(opt.count);
if (!Number.isInteger(count) || count < 1) throw new Error(`--count must be a whole number of at least 1, got ${opt.count}`);
const seed = Number(opt.seed);
if (!Number.isInteger(seed) || seed < 0) throw new Error(`--seed must be a whole number, got ${opt.seed}`);

const root = opt.keep ?? mkdtempSync(path.join(tmpdir(), 'xpole-sizes-'));
const pipeline = await Pipeline.load({ providers: ['cpu'] });
console.log(`# xpole across SPEC's frame sizes: model ${pipeline.model.name} (${pipeline.model.sha256.slice(0, 8)}), defaults, defect rate 0.3, seed ${opt.seed}`);
console.log('| frame (w x h) | frames | ROI recall | PCK@0.5 | PCS@1.0 | overkill | escape | ERROR frames |');
console.log('|---|---|---|---|---|---|---|---|');
const pct = (v: number | null) => (v === null ? 'n/a' : `${(100 * v).toFixed(1)}%`);
const fix = (v: number | null) => (v === null ? 'n/a' : v.toFixed(3));
try {
  for (const [w, h] of sizes) {
    const n = Math.max(w, h) >= 4096 ? Math.max(12, Math.round(count / 10)) : count;
    const dir = path.join(root, `${w}x${h}`);
    await renderDataset({ out: dir, count: n, seed, defectRate: 0.3, frame: { width: w, height: h } });
    const [score] = await evaluate(pipeline, readCocoDataset(dir), [pipeline.variant()]);
    const r = score!.report;
    console.log(`| ${w} x ${h} | ${r.images} | ${pct(r.roiRecall)} | ${fix(r['pck@0.5'])} | ${fix(r['pcs@1.0'])} | ${pct(r.overkill)} | ${pct(r.escape)} | ${score!.errors} |`);
    if (!opt.keep) rmSync(dir, { recursive: true, force: true });
  }
} finally {
  await pipeline.close();
  if (!opt.keep) rmSync(root, { recursive: true, force: true });
}
