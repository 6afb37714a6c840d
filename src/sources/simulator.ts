// The simulated detector of the embedded default: synthetic frames (src/synth) at a fixed rate,
// with defects. Like a real detector it does not wait: a frame not taken in time (the queue was
// full) is dropped and counted. Rendering takes about a second per frame, so a worker thread
// renders `frames` distinct frames once and the detector then repeats them, each delivery with
// its own name and cell id.
import { createRequire } from 'node:module';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';
import type { Logger } from '../log.ts';
import type { Recipe } from '../inspect/recipe.ts';
import type { RenderOptions } from '../synth/frame.ts';
import type { Image, Orientation, Verdict } from '../types.ts';
import type { Source, SourceFrame } from './source.ts';
import { Nap } from './nap.ts';

interface Rendered {
  image: Image;
  cellId: string;
  expectedVerdict: 'PASS' | 'FAIL';
}

export interface SimulatorOptions {
  /** Frames per second; 0 = as fast as they are taken (nothing is ever dropped). */
  rate: number;
  defectRate: number;
  /** Frame k is rendered from seed + k. */
  seed: number;
  /** Frame side in pixels (square frames). */
  size: number;
  /** Distinct frames rendered, then repeated. */
  frames: number;
  orientation: Orientation;
  recipe: Recipe;
}

export class Simulator implements Source {
  readonly kind = 'simulator';
  private readonly period: number;
  private t0 = 0;
  /** Ticks of the simulated detector so far (produced + dropped). */
  private tick = 0;
  private stopped = false;
  private readonly nap = new Nap();
  private onStop!: () => void;
  /** Resolves on stop(): a render still running in the worker is not waited for. */
  private readonly stopSignal = new Promise<null>((resolve) => (this.onStop = () => resolve(null)));
  /** The renderer knows each frame's expected verdict: overkill and escape as SPEC's line figures. */
  private readonly count = { produced: 0, dropped: 0, judged: 0, expectedPass: 0, expectedFail: 0, overkill: 0, escape: 0 };
  private worker: Worker | null = null;
  /** Frame i of the repeating set, rendered in order by the worker. */
  private readonly rendered: Promise<Rendered>[] = [];
  private readonly ready: boolean[] = [];

  constructor(
    private readonly opts: SimulatorOptions,
    private readonly log: Logger,
  ) {
    this.period = opts.rate > 0 ? 1000 / opts.rate : 0;
  }

  get idle(): boolean {
    return this.nap.napping;
  }

  async open(): Promise<void> {
    // The worker needs tsx to load TypeScript, as bin/xpole.js does for the main thread.
    // tsx's ESM API entry, found from its package.json (import.meta.resolve is missing under vitest).
    const tsxDir = path.dirname(createRequire(import.meta.url).resolve('tsx/package.json'));
    const tsx = pathToFileURL(path.join(tsxDir, 'dist/esm/api/index.mjs')).href;
    const script = new URL('./simulator-worker.ts', import.meta.url).href;
    const worker = new Worker(`import(${JSON.stringify(tsx)}).then((m) => { m.register(); return import(${JSON.stringify(script)}); })`, { eval: true });
    this.worker = worker;
    const waiting: ((r: Rendered) => void)[] = [];
    let failed: Error | null = null;
    const rejecters: ((e: Error) => void)[] = [];
    worker.on('message', (r: Rendered) => {
      waiting.shift()?.(r);
      rejecters.shift();
    });
    worker.on('error', (err) => {
      failed = err;
      this.log.err(`simulator: the render worker failed: ${err.message}`);
      for (const reject of rejecters.splice(0)) reject(err);
    });
    for (let i = 0; i < this.opts.frames; i++) {
      const options: RenderOptions = {
        seed: this.opts.seed + i,
        defectRate: this.opts.defectRate,
        width: this.opts.size,
        height: this.opts.size,
        orientation: this.opts.orientation,
        recipe: this.opts.recipe,
      };
      // The worker answers in order: one request, one message.
      this.rendered.push(
        new Promise<Rendered>((resolve, reject) => {
          if (failed) return reject(failed);
          waiting.push(resolve);
          rejecters.push(reject);
          worker.postMessage(options);
        }),
      );
      this.rendered[i]!.catch(() => undefined);
    }
    this.t0 = performance.now();
    const rate = this.opts.rate > 0 ? `${this.opts.rate} frames/s` : 'as fast as the pipeline takes them';
    this.log.info(`simulator: ${this.opts.size}x${this.opts.size} frames, ${rate}, defect rate ${this.opts.defectRate}, seed ${this.opts.seed}`);
  }

  stop(): void {
    this.stopped = true;
    this.onStop();
    void this.worker?.terminate();
    this.worker = null;
    this.nap.wake();
  }

  counters(): Record<string, number> {
    return { ...this.count };
  }

  async next(): Promise<SourceFrame | null> {
    if (this.stopped) return null;
    if (this.period > 0) {
      const due = this.t0 + this.tick * this.period;
      const now = performance.now();
      if (now < due) {
        await this.nap.sleep(due - now);
        if (this.stopped) return null;
      } else {
        // Ticks that passed while nobody took a frame: the detector's frames were lost.
        const missed = Math.floor((now - due) / this.period);
        if (missed > 0) {
          this.count.dropped += missed;
          this.tick += missed;
          this.log.debug(`simulator: ${missed} frame(s) dropped, the queue was full`);
        }
      }
    }
    const k = this.tick++;
    const slot = k % this.opts.frames;
    // Race the stop signal only while the slot is still rendering: every race leaves a reaction on
    // the pending stopSignal until stop(), ~0.3 KB per frame (the soak's heap grew 22% in 20k frames).
    const synth = this.ready[slot] ? await this.rendered[slot]! : await Promise.race([this.rendered[slot]!, this.stopSignal]);
    if (synth === null || this.stopped) return null;
    if (!this.ready[slot]) {
      // Waiting for the first round to render is warm-up, not frames lost: the clock restarts.
      this.ready[slot] = true;
      this.t0 = performance.now() - k * this.period;
    }
    const arrivedAt = performance.now();
    this.count.produced++;
    return {
      frame: `sim-${k}.png`,
      // The first round keeps the renderer's cell ids; repeats get their own.
      cellId: k < this.opts.frames ? synth.cellId : `${synth.cellId}-${Math.floor(k / this.opts.frames)}`,
      input: { image: synth.image },
      arrivedAt,
      recovered: false,
      // Nothing to release (the frame lived only in memory); the verdict is scored.
      ack: async (verdict) => this.score(synth.expectedVerdict, verdict),
    };
  }

  private score(expected: 'PASS' | 'FAIL', verdict: Verdict): void {
    this.count.judged++;
    if (expected === 'PASS') {
      this.count.expectedPass++;
      if (verdict !== 'PASS') this.count.overkill++;
    } else {
      this.count.expectedFail++;
      if (verdict === 'PASS') this.count.escape++;
    }
  }
}
