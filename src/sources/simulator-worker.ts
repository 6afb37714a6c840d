// Renders synthetic frames off the main thread (a frame takes about a second to render, far
// longer than the pipeline needs to judge it), for src/sources/simulator.ts.
import { parentPort } from 'node:worker_threads';
import { renderFrame, type RenderOptions } from '../synth/frame.ts';

parentPort!.on('message', (opts: RenderOptions) => {
  const f = renderFrame(opts);
  const pixels = f.image.pixels;
  parentPort!.postMessage({ image: f.image, cellId: f.cellId, expectedVerdict: f.expectedVerdict }, [pixels.buffer as ArrayBuffer]);
});
