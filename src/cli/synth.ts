// `xpole synth`: a synthetic dataset in SPEC's COCO layout, or a preview montage.
import path from 'node:path';
import sharp from 'sharp';
import { UsageError } from '../errors.ts';
import { CATHODE_LOOK_LIMITS, renderFrame, type SynthFrame } from '../synth/frame.ts';
import { DEFAULT_WORKERS, renderDataset } from '../synth/pool.ts';
import { montage } from '../synth/preview.ts';
import { frameSeed } from '../synth/prng.ts';
import { makeRecipe } from '../inspect/recipe.ts';
import { intOption, numberOption, parse, rangeOption } from './args.ts';

const OPTIONS = {
  out: { type: 'string' },
  count: { type: 'string' },
  seed: { type: 'string' },
  'defect-rate': { type: 'string' },
  workers: { type: 'string' },
  width: { type: 'string' },
  height: { type: 'string' },
  depth: { type: 'string' },
  'cathode-scatter': { type: 'string' },
  'cathode-thickness': { type: 'string' },
  'cathode-contrast': { type: 'string' },
  'hidden-missing': { type: 'string' },
  anodes: { type: 'string' },
  preview: { type: 'string' },
} as const;

export async function run(argv: string[]): Promise<number> {
  const { values, positionals } = parse(argv, OPTIONS, false);
  if (positionals.length) throw new UsageError(`unexpected argument '${positionals[0]}'`);
  const seed = intOption(values.seed, 'seed', 1, 0, 0xffffffff);
  const defectRate = numberOption(values['defect-rate'], 'defect-rate', 0.25, 0, 1);
  const width = values.width === undefined ? undefined : intOption(values.width, 'width', 0, 256, 8192);
  const height = values.height === undefined ? undefined : intOption(values.height, 'height', 0, 256, 8192);
  let depth: 8 | 16 | undefined;
  if (values.depth !== undefined) {
    if (values.depth !== '8' && values.depth !== '16') throw new UsageError(`--depth must be 8 or 16, got '${values.depth}'`);
    depth = values.depth === '8' ? 8 : 16;
  }
  const cathodeScatterPx = rangeOption(values['cathode-scatter'], 'cathode-scatter', ...CATHODE_LOOK_LIMITS.cathodeScatterPx, ' in px');
  const cathodeThickness = rangeOption(values['cathode-thickness'], 'cathode-thickness', ...CATHODE_LOOK_LIMITS.cathodeThickness);
  const cathodeContrast = rangeOption(values['cathode-contrast'], 'cathode-contrast', ...CATHODE_LOOK_LIMITS.cathodeContrast);
  const hiddenMissing = values['hidden-missing'] === undefined ? undefined : numberOption(values['hidden-missing'], 'hidden-missing', 0, 0, 1);
  // Another recipe's stack (the recipe section's anodes): its keypoints name the dataset's, so a
  // model trained on it fits a station configured with that many anodes.
  const anodes = values.anodes === undefined ? undefined : intOption(values.anodes, 'anodes', 16, 2, 200);
  const recipe = anodes === undefined ? undefined : makeRecipe(`stack-a${anodes}c${anodes - 1}`, anodes);
  const frame = { width, height, depth, cathodeScatterPx, cathodeThickness, cathodeContrast, hiddenMissing, recipe };

  if (values.preview !== undefined) {
    if (values.out !== undefined || values.count !== undefined) throw new UsageError('--preview writes one montage: leave out --out and --count');
    if (!/\.png$/i.test(values.preview)) throw new UsageError(`--preview must name a .png file, got '${values.preview}'`);
    const frames: SynthFrame[] = [];
    for (let i = 0; i < 9; i++) frames.push(renderFrame({ ...frame, seed: frameSeed(seed, i), defectRate }));
    const m = montage(frames, 3, 300);
    await sharp(m.data, { raw: { width: m.width, height: m.height, channels: 3 } }).png().toFile(values.preview);
    process.stdout.write(`wrote ${values.preview} (${m.width}x${m.height}, 9 frames, seed ${seed})\n`);
    return 0;
  }

  if (values.out === undefined) throw new UsageError('--out DIR is required (or --preview FILE.png)');
  if (values.count === undefined) throw new UsageError('--count N is required');
  const count = intOption(values.count, 'count', 0, 1, 10_000_000);
  const workers = intOption(values.workers, 'workers', DEFAULT_WORKERS, 1, 64);
  const tty = process.stderr.isTTY;
  const start = Date.now();
  let last = 0;
  const result = await renderDataset({
    out: values.out,
    count,
    seed,
    defectRate,
    workers,
    frame,
    onProgress: (done, total) => {
      const now = Date.now();
      if (!tty || (now - last < 250 && done < total)) return;
      last = now;
      const rate = done / Math.max(1e-3, (now - start) / 1000);
      const eta = Math.round((total - done) / Math.max(rate, 1e-6));
      process.stderr.write(`\rsynth ${done}/${total} (${Math.floor((100 * done) / total)}%) ${rate.toFixed(1)} frames/s, ${eta} s left   `);
    },
  });
  if (tty) process.stderr.write('\n');
  const secs = (Date.now() - start) / 1000;
  process.stdout.write(
    `wrote ${result.images} frames (${result.fail} FAIL) to ${path.resolve(values.out)} in ${secs.toFixed(1)} s with ${workers} workers\n`,
  );
  return 0;
}
