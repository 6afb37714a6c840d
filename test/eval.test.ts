import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { evaluate, run, variantFromFlags } from '../src/cli/eval.ts';
import { readCocoDataset } from '../src/eval/coco.ts';
import { keypointMetrics, type EvalSample } from '../src/eval/metrics.ts';
import { encodePng } from '../src/frame/decode.ts';
import { DEFAULT_PIPELINE_OPTIONS, Pipeline, type Variant } from '../src/inspect/pipeline.ts';
import { DEFAULT_RECIPE } from '../src/inspect/recipe.ts';
import { renderFrame } from '../src/synth/frame.ts';
import { DEFAULT_REFINE_PARAMS } from '../src/vision/refine.ts';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const TINY = path.join(HERE, 'fixtures/tiny-model.onnx');
// The fixture's random heatmaps peak at about 0.4-0.6: minConfidence is set for it, not the shipped model's default.
const TINY_RECIPE = { ...DEFAULT_RECIPE, minConfidence: 0.3 };
const dir = mkdtempSync(path.join(tmpdir(), 'xpole-eval-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** A 4-image dataset in SPEC's COCO layout: three synthetic frames and one undecodable file. */
beforeAll(async () => {
  mkdirSync(path.join(dir, 'images'));
  const images = [];
  const annotations = [];
  for (let i = 0; i < 3; i++) {
    const f = renderFrame({ seed: 40 + i, width: 500, height: 500, orientation: i === 1 ? 'tips-left' : 'tips-right' });
    writeFileSync(path.join(dir, 'images', `${i}.png`), await encodePng(f.image));
    const xs: number[] = [];
    const ys: number[] = [];
    for (let k = 0; k < f.keypoints.length / 3; k++) {
      if (f.keypoints[3 * k + 2] === 0) continue;
      xs.push(f.keypoints[3 * k]!);
      ys.push(f.keypoints[3 * k + 1]!);
    }
    const [x0, x1, y0, y1] = [Math.min(...xs), Math.max(...xs), Math.min(...ys), Math.max(...ys)];
    const m = 0.1 * Math.max(x1 - x0, y1 - y0);
    images.push({ id: i, file_name: `${i}.png`, width: 500, height: 500, xpole: { orientation: f.orientation, pixelPitchMm: f.pixelPitchMm, expectedVerdict: f.expectedVerdict, defects: f.defects } });
    annotations.push({ id: i, image_id: i, category_id: 1, keypoints: Array.from(f.keypoints), bbox: [x0 - m, y0 - m, x1 - x0 + 2 * m, y1 - y0 + 2 * m] });
  }
  writeFileSync(path.join(dir, 'images', 'broken.png'), 'this is not a PNG');
  images.push({ id: 3, file_name: 'broken.png', width: 500, height: 500, xpole: { orientation: 'tips-right', expectedVerdict: 'PASS' } });
  annotations.push({ id: 3, image_id: 3, category_id: 1, keypoints: Array.from(renderFrame({ seed: 40, width: 500, height: 500 }).keypoints), bbox: [10, 10, 100, 300] });
  writeFileSync(
    path.join(dir, 'annotations.json'),
    JSON.stringify({ images, annotations, categories: [{ id: 1, name: 'stack', keypoints: DEFAULT_RECIPE.keypoints }] }),
  );
  writeFileSync(path.join(dir, 'config.yaml'), `model:\n  path: ${TINY}\n  providers: [cpu]\n  intraOpNumThreads: 1\nrecipe:\n  minConfidence: 0.3\n`);
});

describe('xpole eval', () => {
  it('prints exactly SPEC\'s JSON object, counting the undecodable frame as an ERROR', async () => {
    const out: string[] = [];
    const spy = vi.spyOn(process.stdout, 'write').mockImplementation((s) => (out.push(String(s)), true));
    let code: number;
    try {
      code = await run(['--dataset', dir, '--json', '--config', path.join(dir, 'config.yaml')]);
    } finally {
      spy.mockRestore();
    }
    expect(code).toBe(0);
    expect(out).toHaveLength(1);
    const r = JSON.parse(out[0]!);
    expect(Object.keys(r)).toEqual(['images', 'nme', 'pck@0.5', 'pck@1.0', 'pcs@0.5', 'pcs@1.0', 'roiRecall', 'overkill', 'escape']);
    expect(r.images).toBe(4);
    // The broken frame has no prediction: infinite error, so NME is not finite (null in JSON) ...
    expect(r.nme).toBeNull();
    // ... its ROI holds nothing, and an expected PASS judged ERROR is overkill.
    expect(r.roiRecall).toBeLessThanOrEqual(0.75);
    expect(r.overkill).toBeGreaterThan(0);
    for (const key of ['pck@0.5', 'pck@1.0', 'pcs@0.5', 'pcs@1.0']) {
      expect(r[key]).toBeGreaterThanOrEqual(0);
      expect(r[key]).toBeLessThanOrEqual(0.75);
    }
  });

  it('scores several variants from one model pass exactly as separate runs would', async () => {
    const pipeline = await Pipeline.load({ modelPath: TINY, providers: ['cpu'], intraOpNumThreads: 1, recipe: TINY_RECIPE, refineParams: { ...DEFAULT_REFINE_PARAMS, radius: 6 } });
    try {
      const ds = readCocoDataset(dir);
      const base = pipeline.variant();
      const variants = [
        { ...base, refine: false, decode: 'argmax' as const },
        { ...base, refine: true, decode: 'dark' as const, corners: 128 },
      ];
      const frames: { file: string; sample: EvalSample; judged: string }[] = [];
      const together = await evaluate(pipeline, ds, variants, {
        limit: 3,
        onFrame: (img, sample, verdict) => frames.push({ file: img.fileName, sample, judged: verdict.judged }),
      });
      const alone = await evaluate(pipeline, ds, [variants[1]!], { limit: 3 });
      expect(together[1]).toEqual(alone[0]);
      // onFrame hands out the first variant's samples, which score as the whole run does.
      expect(frames.map((f) => f.file)).toEqual(ds.images.slice(0, 3).map((im) => im.fileName));
      expect(keypointMetrics(frames.map((f) => f.sample)).pcs['1.0'] ?? null).toBe(together[0]!.report['pcs@1.0']);
      expect(frames.filter((f) => f.judged === 'ERROR').length).toBe(together[0]!.errors);
      expect(together[0]!.report.images).toBe(3);
      expect(together[0]!.errors).toBe(together[1]!.errors);
      expect(together[0]!.errors).toBeLessThan(3);
      expect(together[0]!.nmeJudged).toBeGreaterThan(0);
      // Refinement and decoding change the poles, so the scores differ.
      expect(together[0]!.nmeJudged).not.toBe(together[1]!.nmeJudged);
    } finally {
      await pipeline.close();
    }
  });

  it('scores the configured variant with what the flags switch off or set, never switching on what the configuration turned off', () => {
    const o = DEFAULT_PIPELINE_OPTIONS;
    const configured: Variant = { decode: o.decode, sheetOrder: true, refine: true, corners: 512, refineParams: o.refineParams, polish: true, tipCheck: true, sharedTipCheck: true, sheetCountCheck: true };
    expect(variantFromFlags(configured, { corners: 512, noRefine: false, noSheetOrder: false })).toEqual(configured);
    const flagged = variantFromFlags(configured, { corners: 128, noRefine: true, noSheetOrder: true, decode: 'argmax' });
    expect(flagged).toEqual({ ...configured, corners: 128, refine: false, sheetOrder: false, decode: 'argmax' });
    // pipeline.refine: false or pipeline.sheetOrder: false in the configuration stay off without the flags.
    const off = variantFromFlags({ ...configured, refine: false, sheetOrder: false }, { corners: 512, noRefine: false, noSheetOrder: false });
    expect([off.refine, off.sheetOrder]).toEqual([false, false]);
  });

  it('names a missing dataset and a bad flag as usage errors', async () => {
    await expect(run(['--dataset', path.join(dir, 'nope')])).rejects.toThrow(/annotations\.json: not found/);
    await expect(run(['--dataset', dir, '--decode', 'mean'])).rejects.toThrow(/--decode must be argmax or dark/);
    await expect(run(['--dataset', dir, '--corners=-3'])).rejects.toThrow(/--corners must be an integer/);
  });
});
