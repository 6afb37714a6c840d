// The HRNet heatmap model: an ONNX Runtime session over the model contract's tensors
// (input float32 [N, 1, H, W] -> heatmaps float32 [N, K, H/4, W/4]). Execution providers are
// tried in order, each on its own (onnxruntime-node throws at session creation when a
// provider's libraries are missing), so the one in use is known and can be reported. The
// session lives in a worker thread (model-worker.mjs): onnxruntime-node runs inference on its
// calling thread, and on the main thread that stopped the event loop for every run.
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { Worker } from 'node:worker_threads';

export type LogLevel = 'debug' | 'info' | 'warning' | 'error';
export type Logger = (level: LogLevel, message: string) => void;

/** The model card (models/xpole-hrnet.json) fields inference relies on. */
export interface ModelCard {
  name: string;
  file: string;
  sha256: string;
  input: { width: number; height: number; normalization: string };
  heatmap: { width: number; height: number; stride: number; sigma: number };
  recipe: string;
  keypoints: string[];
}

export interface ModelOptions {
  modelPath: string;
  /** ONNX Runtime execution providers in order of preference, e.g. ['tensorrt', 'cuda', 'cpu']. */
  providers: string[];
  intraOpNumThreads: number;
  /** Let idle intra-op threads spin (ONNX Runtime's default); off unless a benchmark asks. */
  spinning?: boolean;
  log?: Logger;
}

/** The model cannot be used: missing, corrupt, not matching its card, or no provider loads it. */
export class ModelLoadError extends Error {
  override name = 'ModelLoadError';
}

/** The card sits beside the model with the extension .json. */
export function cardPathFor(modelPath: string): string {
  return modelPath.replace(/\.onnx$/i, '') + '.json';
}

export function sha256Hex(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

/** Heatmaps as the session returned them, checked against the card by run(). */
interface WorkerHeatmaps {
  type: string;
  dims: readonly number[];
  data: unknown;
}

/** The worker thread holding the session; requests and their answers matched by id. */
class SessionWorker {
  private readonly worker: Worker;
  private readonly pending = new Map<number, { resolve: (v: Record<string, unknown>) => void; reject: (e: Error) => void }>();
  private nextId = 0;
  private stopped: Error | undefined;

  constructor(bytes: Uint8Array, opts: Pick<ModelOptions, 'intraOpNumThreads' | 'spinning'>) {
    this.worker = new Worker(new URL('./model-worker.mjs', import.meta.url), {
      workerData: { bytes, intraOpNumThreads: opts.intraOpNumThreads, spinning: opts.spinning ?? false },
    });
    // Idle, the worker does not keep the process alive; a request in flight does (request()).
    this.worker.unref();
    this.worker.on('message', (m: { id: number; error?: string }) => {
      const p = this.pending.get(m.id);
      if (!p) return;
      this.settled(m.id);
      if (m.error !== undefined) p.reject(new Error(m.error));
      else p.resolve(m);
    });
    const stop = (err: Error) => {
      this.stopped ??= err;
      for (const [id, p] of this.pending) {
        this.settled(id);
        p.reject(this.stopped);
      }
    };
    this.worker.on('error', (err) => stop(new Error(`the model's worker thread failed: ${err.message}`)));
    this.worker.on('exit', (code) => stop(new Error(`the model's worker thread exited (code ${code})`)));
  }

  request(msg: Record<string, unknown>, transfer: ArrayBuffer[] = []): Promise<Record<string, unknown>> {
    if (this.stopped) return Promise.reject(this.stopped);
    const id = ++this.nextId;
    if (this.pending.size === 0) this.worker.ref();
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.worker.postMessage({ ...msg, id }, transfer);
    });
  }

  private settled(id: number): void {
    this.pending.delete(id);
    if (this.pending.size === 0) this.worker.unref();
  }

  async terminate(): Promise<void> {
    this.stopped ??= new Error('the model is closed');
    await this.worker.terminate();
  }
}

export class HeatmapModel {
  /** Runs go one at a time: concurrent pipeline frames overlap their other stages, not the model. */
  private queue: Promise<unknown> = Promise.resolve();

  private constructor(
    private readonly session: SessionWorker,
    readonly card: ModelCard,
    readonly provider: string,
  ) {}

  get name(): string {
    return this.card.name;
  }

  get sha256(): string {
    return this.card.sha256;
  }

  /** Values in one input sample / one output sample. */
  get inputSize(): number {
    return this.card.input.width * this.card.input.height;
  }

  get outputSize(): number {
    return this.card.keypoints.length * this.card.heatmap.width * this.card.heatmap.height;
  }

  static async load(opts: ModelOptions): Promise<HeatmapModel> {
    const log = opts.log ?? (() => {});
    const cardPath = cardPathFor(opts.modelPath);
    let bytes: Uint8Array;
    try {
      bytes = await readFile(opts.modelPath);
    } catch (err) {
      throw new ModelLoadError(`model file ${opts.modelPath} cannot be read: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
    }
    let cardText: string;
    try {
      cardText = await readFile(cardPath, 'utf8');
    } catch (err) {
      throw new ModelLoadError(`model card ${cardPath} cannot be read: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
    }
    const card = parseCard(cardText, cardPath);
    const sha = sha256Hex(bytes);
    if (sha !== card.sha256) {
      throw new ModelLoadError(
        `model file ${opts.modelPath} does not match its card ${cardPath}: sha256 ${sha}, card says ${card.sha256} (corrupt or replaced file?)`,
      );
    }
    if (opts.providers.length === 0) throw new ModelLoadError('no execution provider configured (providers is empty)');
    const worker = new SessionWorker(bytes, opts);
    const failures: string[] = [];
    try {
      for (const provider of opts.providers) {
        try {
          await worker.request({ type: 'create', provider });
        } catch (err) {
          const why = (err as Error).message.split('\n')[0];
          failures.push(`${provider}: ${why}`);
          log('warning', `execution provider '${provider}' unavailable, trying the next one: ${why}`);
          continue;
        }
        const model = new HeatmapModel(worker, card, provider);
        try {
          await model.run(new Float32Array(model.inputSize), 1);
        } catch (err) {
          await worker.request({ type: 'release' });
          if (err instanceof ModelLoadError) throw err;
          failures.push(`${provider}: warm-up failed: ${(err as Error).message}`);
          log('warning', `execution provider '${provider}' failed the warm-up run, trying the next one: ${(err as Error).message}`);
          continue;
        }
        log('info', `model ${card.name} (sha256 ${card.sha256.slice(0, 12)}) loaded on execution provider '${provider}'`);
        return model;
      }
    } catch (err) {
      await worker.terminate();
      throw err;
    }
    await worker.terminate();
    throw new ModelLoadError(`model ${opts.modelPath}: no execution provider could run it (${failures.join('; ')})`);
  }

  /** Heatmaps for `n` samples of `input` (n x 1 x H x W); rejects on a runtime failure. */
  run(input: Float32Array, n: number): Promise<Float32Array> {
    const { width, height } = this.card.input;
    if (input.length !== n * width * height) {
      return Promise.reject(new RangeError(`model input holds ${input.length} values, expected ${n}x1x${height}x${width}`));
    }
    const job = this.queue.then(async () => {
      // A copy goes to the worker: the caller keeps its input.
      const copy = input.slice();
      const reply = await this.session.request({ type: 'run', input: copy, dims: [n, 1, height, width] }, [copy.buffer]);
      const hm = reply['heatmaps'] as WorkerHeatmaps | null;
      const k = this.card.keypoints.length;
      const want = [n, k, this.card.heatmap.height, this.card.heatmap.width];
      if (!hm || hm.type !== 'float32' || hm.dims.join() !== want.join() || !(hm.data instanceof Float32Array)) {
        throw new ModelLoadError(
          `model output ${hm ? `${hm.type} [${hm.dims.join(', ')}]` : 'missing'} does not match the card: float32 [${want.join(', ')}]`,
        );
      }
      return hm.data;
    });
    this.queue = job.catch(() => undefined);
    return job;
  }

  async close(): Promise<void> {
    await this.queue;
    await this.session.request({ type: 'release' }).catch(() => undefined);
    await this.session.terminate();
  }
}

function parseCard(text: string, where: string): ModelCard {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    throw new ModelLoadError(`model card ${where} is not valid JSON: ${(err as Error).message}`);
  }
  const c = raw as Partial<ModelCard>;
  const bad = (field: string, want: string): never => {
    throw new ModelLoadError(`model card ${where}: '${field}' must be ${want}`);
  };
  const posInt = (v: unknown) => Number.isInteger(v) && (v as number) > 0;
  if (typeof c.name !== 'string' || !c.name) bad('name', 'a non-empty string');
  if (typeof c.sha256 !== 'string' || !/^[0-9a-f]{64}$/.test(c.sha256!)) bad('sha256', '64 lowercase hex digits');
  if (!c.input || !posInt(c.input.width) || !posInt(c.input.height)) bad('input.width/height', 'positive integers');
  if (!c.heatmap || !posInt(c.heatmap.width) || !posInt(c.heatmap.height)) bad('heatmap.width/height', 'positive integers');
  if (!(typeof c.heatmap!.sigma === 'number' && c.heatmap!.sigma > 0)) bad('heatmap.sigma', 'a positive number');
  if (!Array.isArray(c.keypoints) || c.keypoints.length === 0 || !c.keypoints.every((k) => typeof k === 'string')) {
    bad('keypoints', 'a non-empty list of names');
  }
  if (c.input!.normalization !== undefined && c.input!.normalization !== 'zscore-per-crop') {
    bad('input.normalization', "'zscore-per-crop' (the only normalization inference implements)");
  }
  return c as ModelCard;
}
