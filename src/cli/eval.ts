// `xpole eval --dataset DIR [--corners N] [--no-refine] [--no-sheet-order] [--decode argmax|dark] [--json]`: SPEC's
// metrics of the pipeline on a COCO dataset, each image in its own orientation. evaluate() scores
// several decode/refine variants from one model pass per frame (the ablation uses it).
import { readFile } from 'node:fs/promises';
import { decodeFrame } from '../frame/decode.ts';
import { loadConfig } from '../config/index.ts';
import { FrameError, UsageError } from '../errors.ts';
import { readCocoDataset, type CocoDataset, type CocoImage } from '../eval/coco.ts';
import { keypointMetrics, lineFigures, roiRecall, type EvalSample } from '../eval/metrics.ts';
import type { Recipe } from '../inspect/recipe.ts';
import { Pipeline, type PoleSet, type Variant } from '../inspect/pipeline.ts';
import type { Box, Verdict } from '../types.ts';
import { intOption, parse } from './args.ts';
import { loadPipeline, pipelineOptionsFromConfig, stderrLog } from './inspect.ts';

/** SPEC's `xpole eval --json` object. */
export interface EvalReport {
  images: number;
  nme: number | null;
  'pck@0.5': number | null;
  'pck@1.0': number | null;
  'pcs@0.5': number | null;
  'pcs@1.0': number | null;
  roiRecall: number | null;
  overkill: number | null;
  escape: number | null;
}

export interface VariantScore {
  report: EvalReport;
  /** Frames judged ERROR (no ROI, model failure, undecodable). */
  errors: number;
  /** NME over the frames that were judged (finite where every judged frame has all poles). */
  nmeJudged: number | null;
}

export interface EvaluateOptions {
  limit?: number;
  onProgress?: (done: number, total: number) => void;
  /** Each image's sample and verdict under the first variant, as scored (bench/ranges.ts groups them). */
  onFrame?: (image: CocoImage, sample: EvalSample, verdict: { expected: 'PASS' | 'FAIL' | null; judged: Verdict }) => void;
}

/** The recipe for one image: the dataset's keypoints, the image's pixel pitch. */
function recipeFor(base: Recipe, pitch: number | null): Recipe {
  if (pitch === null || pitch === base.pixelPitchMm) return base;
  return { ...base, pixelPitchMm: pitch };
}

export async function evaluate(pipeline: Pipeline, dataset: CocoDataset, variants: Variant[], opts: EvaluateOptions = {}): Promise<VariantScore[]> {
  const recipe = pipeline.options.recipe;
  if (dataset.keypointNames.join() !== recipe.keypoints.join()) {
    throw new UsageError(
      `dataset keypoints [${dataset.keypointNames.join(' ')}] differ from recipe '${recipe.name}' [${recipe.keypoints.join(' ')}]`,
    );
  }
  const images = dataset.images.slice(0, opts.limit ?? dataset.images.length);
  const per = variants.map(() => ({
    samples: [] as EvalSample[],
    judged: [] as EvalSample[],
    rois: [] as { roi: Box | null; keypoints: Float64Array }[],
    verdicts: [] as { expected: 'PASS' | 'FAIL' | null; judged: Verdict }[],
    errors: 0,
  }));
  const k = recipe.keypoints.length;
  for (const [n, img] of images.entries()) {
    const ids = { id: `eval-${img.id}`, seq: n + 1, ts: new Date().toISOString() };
    const imgRecipe = recipeFor(recipe, img.pixelPitchMm);
    let judged;
    try {
      const image = await decodeFrame(await readFile(img.file));
      judged = await pipeline.judgeDetailed(
        { frame: img.fileName, cellId: img.cellId, image, orientation: img.orientation },
        ids,
        { ...variants[0]!, recipe: imgRecipe },
      );
    } catch (err) {
      if (!(err instanceof FrameError)) throw err;
      judged = null;
    }
    for (const [i, v] of variants.entries()) {
      const acc = per[i]!;
      let poles: PoleSet | null = null;
      let verdict: Verdict = 'ERROR';
      if (judged?.analysis) {
        poles = i === 0 ? judged.poles! : (await pipeline.locatePoles(judged.analysis, v)).poles;
        verdict = i === 0 ? judged.result.verdict : pipeline.verdict(judged.analysis, poles, judged.result, {}, imgRecipe).verdict;
      }
      const predicted = new Float64Array(2 * k).fill(Number.NaN);
      if (poles) {
        for (let j = 0; j < k; j++) {
          predicted[2 * j] = poles.x[j]!;
          predicted[2 * j + 1] = poles.y[j]!;
        }
      } else {
        acc.errors++;
      }
      const sample = { keypoints: img.keypoints, bbox: img.bbox, predicted };
      acc.samples.push(sample);
      if (poles) acc.judged.push(sample);
      acc.rois.push({ roi: judged?.analysis?.roi ?? null, keypoints: img.keypoints });
      const line = { expected: img.expectedVerdict, judged: verdict };
      acc.verdicts.push(line);
      if (i === 0) opts.onFrame?.(img, sample, line);
    }
    opts.onProgress?.(n + 1, images.length);
  }
  return per.map((acc) => {
    const m = keypointMetrics(acc.samples);
    const line = lineFigures(acc.verdicts);
    const finite = (v: number | null) => (v === null || Number.isFinite(v) ? v : null);
    return {
      report: {
        images: images.length,
        nme: finite(m.nme),
        'pck@0.5': m.pck['0.5'] ?? null,
        'pck@1.0': m.pck['1.0'] ?? null,
        'pcs@0.5': m.pcs['0.5'] ?? null,
        'pcs@1.0': m.pcs['1.0'] ?? null,
        roiRecall: roiRecall(acc.rois),
        overkill: line.overkill,
        escape: line.escape,
      },
      errors: acc.errors,
      nmeJudged: keypointMetrics(acc.judged).nme,
    };
  });
}

function fmt(v: number | null, digits = 4): string {
  return v === null ? 'n/a' : v.toFixed(digits);
}

/** The variant `xpole eval` scores: the configured pipeline's, with what the flags switch off or set. */
export function variantFromFlags(
  configured: Variant,
  flags: { corners: number; noRefine: boolean; noSheetOrder: boolean; decode?: Variant['decode'] },
): Variant {
  return {
    ...configured,
    corners: flags.corners,
    refine: configured.refine && !flags.noRefine,
    sheetOrder: configured.sheetOrder && !flags.noSheetOrder,
    decode: flags.decode ?? configured.decode,
  };
}

export async function run(argv: string[]): Promise<number> {
  const { values } = parse(
    argv,
    {
      dataset: { type: 'string' },
      corners: { type: 'string' },
      'no-refine': { type: 'boolean', default: false },
      'no-sheet-order': { type: 'boolean', default: false },
      decode: { type: 'string' },
      json: { type: 'boolean', default: false },
      config: { type: 'string' },
      limit: { type: 'string' },
    },
    false,
  );
  if (!values.dataset) throw new UsageError('--dataset DIR is required');
  if (values.decode !== undefined && values.decode !== 'argmax' && values.decode !== 'dark') {
    throw new UsageError(`--decode must be argmax or dark, got '${values.decode}'`);
  }
  const config = loadConfig(values.config);
  const options = pipelineOptionsFromConfig(config, stderrLog);
  // The refinement's variants take a prefix of step 1's corners, which also set the ROI: at most pipeline.corners.
  const corners = intOption(values.corners, 'corners', options.corners, 0, options.corners);
  const limit = values.limit === undefined ? undefined : intOption(values.limit, 'limit', 0, 1, 10_000_000);
  const dataset = readCocoDataset(values.dataset);
  const pipeline = await loadPipeline(options, 'eval');
  if (!pipeline) return 1;
  const tty = process.stderr.isTTY;
  try {
    const variant = variantFromFlags(pipeline.variant(), {
      corners,
      noRefine: values['no-refine']!,
      noSheetOrder: values['no-sheet-order']!,
      decode: values.decode as Variant['decode'] | undefined,
    });
    const [score] = await evaluate(pipeline, dataset, [variant], {
      limit,
      onProgress: tty ? (done, total) => process.stderr.write(`\reval ${done}/${total}`) : undefined,
    });
    if (tty) process.stderr.write('\n');
    const r = score!.report;
    if (values.json) {
      process.stdout.write(JSON.stringify(r) + '\n');
    } else {
      process.stdout.write(
        [
          `images     ${r.images} (${score!.errors} ERROR)`,
          `NME        ${r.nme === null && score!.errors > 0 ? 'inf (an ERROR frame is an infinite error)' : fmt(r.nme)}; over judged frames ${fmt(score!.nmeJudged)}`,
          `PCK@0.5    ${fmt(r['pck@0.5'])}`,
          `PCK@1.0    ${fmt(r['pck@1.0'])}`,
          `PCS@0.5    ${fmt(r['pcs@0.5'])}`,
          `PCS@1.0    ${fmt(r['pcs@1.0'])}`,
          `ROI recall ${fmt(r.roiRecall)}`,
          `overkill   ${fmt(r.overkill)}`,
          `escape     ${fmt(r.escape)}`,
        ].join('\n') + '\n',
      );
    }
  } finally {
    await pipeline.close();
  }
  return 0;
}
