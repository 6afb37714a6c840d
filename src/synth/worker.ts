// Worker thread of `xpole synth`: renders the frames it is sent and writes their PNGs.
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { parentPort } from 'node:worker_threads';
import { encodePng } from '../frame/decode.ts';
import { cocoRecords, fileName } from './dataset.ts';
import { renderFrame } from './frame.ts';
import type { Job, JobResult } from './pool.ts';

parentPort!.on('message', (job: Job) => {
  void (async () => {
    try {
      const frame = renderFrame(job.render);
      await writeFile(path.join(job.imagesDir, fileName(job.index)), await encodePng(frame.image));
      const msg: JobResult = { index: job.index, records: cocoRecords(job.index, job.render.seed, frame) };
      parentPort!.postMessage(msg);
    } catch (err) {
      const msg: JobResult = { index: job.index, error: (err as Error).stack ?? String(err) };
      parentPort!.postMessage(msg);
    }
  })();
});
