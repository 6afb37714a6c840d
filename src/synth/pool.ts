// Renders a dataset on worker threads. Each frame depends only on (seed, index), so the output
// is the same for any number of workers.
import { mkdir, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { cpus } from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';
import { DEFAULT_RECIPE } from '../inspect/recipe.ts';
import { cocoDataset, type CocoAnnotation, type CocoImage } from './dataset.ts';
import type { RenderOptions } from './frame.ts';
import { frameSeed } from './prng.ts';

/** Worker threads when not told: one per core, at most 8. */
export const DEFAULT_WORKERS = Math.max(1, Math.min(cpus().length, 8));

export interface Job {
  index: number;
  imagesDir: string;
  render: RenderOptions;
}

export type JobResult = { index: number; records: { image: CocoImage; annotation: CocoAnnotation } } | { index: number; error: string };

export interface DatasetOptions {
  out: string;
  count: number;
  seed: number;
  defectRate: number;
  /** Default DEFAULT_WORKERS. */
  workers?: number;
  /** Options applied to every frame (size, depth...); seed and defectRate come from above. */
  frame?: Omit<RenderOptions, 'seed' | 'defectRate'>;
  onProgress?: (done: number, total: number) => void;
}

/** The workers run TypeScript: each registers tsx before loading worker.ts (there is no build step). */
function spawn(): Worker {
  // tsx's ESM entry (its CommonJS one cannot register hooks from a worker).
  const tsxDir = path.dirname(createRequire(import.meta.url).resolve('tsx/package.json'));
  const tsx = pathToFileURL(path.join(tsxDir, 'dist/esm/api/index.mjs')).href;
  const entry = new URL('./worker.ts', import.meta.url).href;
  const code = `import(${JSON.stringify(tsx)}).then((m) => { m.register(); return import(${JSON.stringify(entry)}); });`;
  return new Worker(code, { eval: true });
}

export async function renderDataset(opts: DatasetOptions): Promise<{ images: number; fail: number }> {
  const imagesDir = path.join(opts.out, 'images');
  await mkdir(imagesDir, { recursive: true });
  const records: ({ image: CocoImage; annotation: CocoAnnotation } | undefined)[] = new Array(opts.count);
  let next = 0;
  let done = 0;
  const workers = Array.from({ length: Math.max(1, Math.min(opts.workers ?? DEFAULT_WORKERS, opts.count)) }, spawn);
  try {
    await Promise.all(
      workers.map(
        (w) =>
          new Promise<void>((resolve, reject) => {
            // Two jobs in flight per worker: it renders the next frame while the last one's PNG
            // is encoded and written off its JavaScript thread.
            let inFlight = 0;
            const send = () => {
              if (next >= opts.count) {
                if (inFlight === 0) resolve();
                return;
              }
              const index = next++;
              const job: Job = { index, imagesDir, render: { ...opts.frame, seed: frameSeed(opts.seed, index), defectRate: opts.defectRate } };
              inFlight++;
              w.postMessage(job);
            };
            w.on('message', (r: JobResult) => {
              inFlight--;
              if ('error' in r) return reject(new Error(`frame ${r.index}: ${r.error}`));
              records[r.index] = r.records;
              opts.onProgress?.(++done, opts.count);
              send();
            });
            w.on('error', reject);
            w.on('exit', (code) => code !== 0 && reject(new Error(`synth worker exited with code ${code}`)));
            send();
            send();
          }),
      ),
    );
  } finally {
    await Promise.all(workers.map((w) => w.terminate()));
  }
  const all = records as { image: CocoImage; annotation: CocoAnnotation }[];
  const info = { description: 'xpole synthetic frames', generator: 'xpole synth', seed: opts.seed, defectRate: opts.defectRate, count: opts.count };
  const dataset = cocoDataset(opts.frame?.recipe ?? DEFAULT_RECIPE, info, all);
  await writeFile(path.join(opts.out, 'annotations.json'), JSON.stringify(dataset));
  return { images: all.length, fail: all.filter((r) => r.image.xpole.expectedVerdict === 'FAIL').length };
}
