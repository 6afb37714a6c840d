// The model stage alone: the float model against its int8 variant, each as the daemon holds it
// (HeatmapModel: ONNX Runtime in a worker thread, intra-op threads not spinning), run in turn on
// the same crops so that this VM's drifting speed hits both alike. Prints per pass the wall time
// (median / p99) and the CPU time of the whole process (all threads) for each thread setting.
// Usage: npx tsx bench/model.ts [--runs N (passes per model and setting, default 200)] [--threads 1,2]
import { parseArgs } from 'node:util';
import { cpus } from 'node:os';
import { DEFAULT_PIPELINE_OPTIONS } from '../src/inspect/pipeline.ts';
import { renderFrame } from '../src/synth/frame.ts';
import { HeatmapModel } from '../src/vision/model.ts';
import { cropForModel } from '../src/vision/preprocess.ts';

const { values: opt } = parseArgs({ options: { runs: { type: 'string', default: '200' }, threads: { type: 'string', default: '1,2' } } });
const RUNS = Number(opt.runs);
const FLOAT = DEFAULT_PIPELINE_OPTIONS.modelPath;
const INT8 = FLOAT.replace(/\.onnx$/, '-int8.onnx');

// Crops of rendered frames around their poles' box + 10% (what a second pass sees).
const crops: Float32Array[] = [];
for (let seed = 1; seed <= 8; seed++) {
  const f = renderFrame({ seed, width: 1000, height: 1000, depth: 16, orientation: 'tips-right', defectRate: 0 });
  let [x0, y0, x1, y1] = [Infinity, Infinity, -Infinity, -Infinity];
  for (let i = 0; i < f.keypoints.length; i += 3) {
    x0 = Math.min(x0, f.keypoints[i]!); x1 = Math.max(x1, f.keypoints[i]!);
    y0 = Math.min(y0, f.keypoints[i + 1]!); y1 = Math.max(y1, f.keypoints[i + 1]!);
  }
  const w = Math.max(x1 - x0, 40) * 1.1, h = (y1 - y0) * 1.1;
  crops.push(cropForModel(f.image, [x0 - (w - (x1 - x0)) / 2 - 40, y0 - (h - (y1 - y0)) / 2, w + 40, h], f.orientation, { width: 128, height: 256 }));
}

console.log(`# model stage: ${RUNS} passes per model and thread setting, taken in turn; ${cpus().length} cores, CPU provider`);
console.log('| model | intra-op threads | wall ms, median / p99 | CPU ms a pass (all threads) |');
console.log('|---|---|---|---|');
for (const threads of opt.threads.split(',').map(Number)) {
  const models = [await HeatmapModel.load({ modelPath: FLOAT, providers: ['cpu'], intraOpNumThreads: threads }), await HeatmapModel.load({ modelPath: INT8, providers: ['cpu'], intraOpNumThreads: threads })];
  const wall: number[][] = [[], []];
  const cpu = [0, 0];
  for (let r = 0; r < 20; r++) for (const m of models) await m.run(crops[r % crops.length]!, 1);
  for (let r = 0; r < RUNS; r++) {
    for (const [i, m] of models.entries()) {
      const c0 = process.cpuUsage();
      const t0 = performance.now();
      await m.run(crops[r % crops.length]!, 1);
      wall[i]!.push(performance.now() - t0);
      const c = process.cpuUsage(c0);
      cpu[i]! += (c.user + c.system) / 1000;
    }
  }
  for (const [i, m] of models.entries()) {
    const w = wall[i]!.sort((a, b) => a - b);
    console.log(`| ${m.name} | ${threads} | ${w[Math.floor(RUNS / 2)]!.toFixed(2)} / ${w[Math.floor(RUNS * 0.99)]!.toFixed(2)} | ${(cpu[i]! / RUNS).toFixed(2)} |`);
    await m.close();
  }
}
