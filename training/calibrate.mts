// Activation ranges for training/quantize.py: the pipeline judges DIR's first N frames with the
// float model, every crop it hands the model is recorded (first passes on the ROI stage's box,
// second passes, deeper looks), and PROBE (the model with every intermediate tensor as an output)
// runs on those crops. Writes {tensor: {min, max}} as JSON.
// Usage: npx tsx training/calibrate.mts --dataset DIR --frames N --model MODEL.onnx --probe PROBE.onnx --out RANGES.json
import { readFile, writeFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import ort from 'onnxruntime-node';
import { decodeFrame } from '../src/frame/decode.ts';
import { readCocoDataset } from '../src/eval/coco.ts';
import { Pipeline } from '../src/inspect/pipeline.ts';
import { HeatmapModel } from '../src/vision/model.ts';

const { values: opt } = parseArgs({
  options: { dataset: { type: 'string' }, frames: { type: 'string', default: '80' }, model: { type: 'string' }, probe: { type: 'string' }, out: { type: 'string' } },
});
if (!opt.dataset || !opt.model || !opt.probe || !opt.out) {
  console.error('usage: calibrate.mts --dataset DIR --frames N --model MODEL.onnx --probe PROBE.onnx --out RANGES.json');
  process.exit(2);
}

const crops: { input: Float32Array; dims: number[] }[] = [];
const run = HeatmapModel.prototype.run;
HeatmapModel.prototype.run = function (this: HeatmapModel, input: Float32Array, n: number) {
  crops.push({ input: input.slice(), dims: [n, 1, this.card.input.height, this.card.input.width] });
  return run.call(this, input, n);
};
// The float model runs both passes, as the ranges are for it: without an int8 first pass that
// would also refuse to load once a new model has made the old int8 variant stale.
const pipeline = await Pipeline.load({ modelPath: opt.model, firstPassModelPath: null, providers: ['cpu'], log: () => {} });
crops.length = 0; // the load's warm-up run is all zeros
const dataset = readCocoDataset(opt.dataset);
const frames = dataset.images.slice(0, Number(opt.frames));
for (const [seq, img] of frames.entries()) {
  const image = await decodeFrame(await readFile(img.file));
  const recipe = { ...pipeline.options.recipe, pixelPitchMm: img.pixelPitchMm ?? pipeline.options.recipe.pixelPitchMm };
  await pipeline.judgeDetailed({ frame: img.fileName, cellId: null, image, orientation: img.orientation }, { id: 'calibration', seq, ts: '' }, { recipe });
}
await pipeline.close();

const probe = await ort.InferenceSession.create(opt.probe, { executionProviders: ['cpu'] });
const ranges: Record<string, { min: number; max: number }> = {};
const widen = (name: string, data: Float32Array) => {
  const r = (ranges[name] ??= { min: Infinity, max: -Infinity });
  for (const v of data) {
    if (v < r.min) r.min = v;
    if (v > r.max) r.max = v;
  }
};
for (const { input, dims } of crops) {
  widen(probe.inputNames[0]!, input);
  const out = await probe.run({ [probe.inputNames[0]!]: new ort.Tensor('float32', input, dims) });
  for (const [name, t] of Object.entries(out)) widen(name, t.data as Float32Array);
}
await writeFile(opt.out, JSON.stringify(ranges, null, 1) + '\n');
console.log(`${opt.out}: ranges of ${Object.keys(ranges).length} tensors over ${crops.length} crops from ${frames.length} frames of ${opt.dataset}`);
