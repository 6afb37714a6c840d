// Prints the renderer's cost per frame by size (one thread), then the throughput of `xpole synth`
// on worker threads (a short run first, to tell worker start-up from the cost per frame). CPU time is printed beside wall time: on a busy machine wall time says little. Usage: npx tsx bench/synth.ts [frames per size, default 6] [dataset frames, default 60]
import { mkdtemp, rm } from 'node:fs/promises';
import { cpus, tmpdir } from 'node:os';
import path from 'node:path';
import { renderFrame } from '../src/synth/frame.ts';
import { renderDataset } from '../src/synth/pool.ts';
import { frameSeed } from '../src/synth/prng.ts';

const perSize = Number(process.argv[2] ?? 6);
const cpuMs = (since: NodeJS.CpuUsage) => {
  const d = process.cpuUsage(since);
  return (d.user + d.system) / 1000;
};
const datasetFrames = Number(process.argv[3] ?? 60);

for (const [w, h] of [
  [1000, 1000],
  [1600, 1600],
  [2048, 2048],
]) {
  renderFrame({ seed: 0, width: w, height: h }); // warm-up
  const t0 = performance.now();
  const c0 = process.cpuUsage();
  for (let i = 0; i < perSize; i++) renderFrame({ seed: frameSeed(99, i), width: w, height: h });
  const ms = (performance.now() - t0) / perSize;
  const cpu = cpuMs(c0) / perSize;
  console.log(`renderFrame ${w}x${h}: ${cpu.toFixed(0)} ms CPU/frame (${((cpu * 1e6) / (w * h)).toFixed(0)} ns/px), ${ms.toFixed(0)} ms wall, mean of ${perSize}`);
}

const workers = cpus().length;
/** CPU ms (all threads) and wall s of `xpole synth` for `count` frames, fresh workers each time. */
async function dataset(count: number): Promise<{ cpu: number; s: number }> {
  const out = await mkdtemp(path.join(tmpdir(), 'xpole-bench-synth-'));
  const t0 = performance.now();
  const c0 = process.cpuUsage();
  await renderDataset({ out, count, seed: 1, defectRate: 0.25, workers });
  const cpu = cpuMs(c0);
  const s = (performance.now() - t0) / 1000;
  await rm(out, { recursive: true, force: true });
  return { cpu, s };
}
// Worker start-up (tsx, module compilation, JIT warm-up) is a fixed cost: a short run of
// 2 frames per worker measures it, so the per-frame cost of a long run can be told apart.
const warm = 2 * workers;
const small = await dataset(warm);
const { cpu, s } = await dataset(datasetFrames);
const cpuPerFrame = cpu / datasetFrames;
const marginal = datasetFrames > warm ? (cpu - small.cpu) / (datasetFrames - warm) : cpuPerFrame;
console.log(
  `xpole synth (default size mix, PNGs written): ${datasetFrames} frames in ${s.toFixed(1)} s wall with ${workers} workers (${(datasetFrames / s).toFixed(2)} frames/s); ` +
    `${cpuPerFrame.toFixed(0)} ms CPU/frame with start-up, ${marginal.toFixed(0)} ms CPU/frame beyond the first ${warm} (start-up + ${warm} frames: ${small.cpu.toFixed(0)} ms CPU), ` +
    `so 3000 frames on ${workers} idle cores ~ ${((small.cpu + (3000 - warm) * marginal) / workers / 60000).toFixed(1)} min`,
);
