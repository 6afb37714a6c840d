// The two models, each an ONNX Runtime session (OnnxNet) checked against its card: the HRNet
// heatmap model (input float32 [N, 1, H, W] -> heatmaps float32 [N, K, H/4, W/4]) and the pole
// polisher (patches float32 [N, 2, P, P] -> offsets float32 [N, 2]). Execution providers are
// tried in order, each on its own (onnxruntime-node throws at session creation when a
// provider's libraries are missing), so the one in use is known and can be reported. The
// session lives in a worker thread (model-worker.mjs): onnxruntime-node runs inference on its
// calling thread, and on the main thread that stopped the event loop for every run.
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { Worker } from 'node:worker_threads';
import type { PolishInput } from './polish.ts';

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
  /** A quantized variant's source model (training/quantize.py). */
  quantization?: { from?: { sha256?: string } };
}

/**
 * What makes two heatmap models' outputs interchangeable (a first-pass model for the heatmap
 * model): the card fields inference relies on. null when they agree, else the ones that differ.
 */
export function cardMismatch(a: ModelCard, b: ModelCard): string | null {
  const relied = (c: ModelCard) => ({
    'input size': [c.input.width, c.input.height],
    'input normalization': c.input.normalization,
    'heatmap grid': [c.heatmap.width, c.heatmap.height, c.heatmap.stride, c.heatmap.sigma],
    recipe: c.recipe,
    keypoints: c.keypoints,
  });
  const [x, y] = [relied(a), relied(b)];
  const differs = (Object.keys(x) as (keyof typeof x)[]).filter((k) => JSON.stringify(x[k]) !== JSON.stringify(y[k]));
  return differs.length ? `their cards differ in ${differs.join(', ')}` : null;
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

/** A tensor as the session returned it, checked against the card by OnnxNet.run(). */
interface WorkerOutput {
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

/**
 * One ONNX model in its worker thread, on the first execution provider of the chain that
 * creates a session and passes a warm-up run. Runs go one at a time: concurrent pipeline frames
 * overlap their other stages, not the model.
 */
export class OnnxNet {
  private queue: Promise<unknown> = Promise.resolve();

  private constructor(
    private readonly session: SessionWorker,
    readonly provider: string,
  ) {}

  /** `what` names the model in errors and logs; `warmUp` runs it once on the new session. */
  static async open(bytes: Uint8Array, what: string, opts: ModelOptions, warmUp: (net: OnnxNet) => Promise<unknown>): Promise<OnnxNet> {
    const log = opts.log ?? (() => {});
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
          log('warning', `${what}: execution provider '${provider}' unavailable, trying the next one: ${why}`);
          continue;
        }
        const net = new OnnxNet(worker, provider);
        try {
          await warmUp(net);
        } catch (err) {
          await worker.request({ type: 'release' });
          if (err instanceof ModelLoadError) throw err;
          failures.push(`${provider}: warm-up failed: ${(err as Error).message}`);
          log('warning', `${what}: execution provider '${provider}' failed the warm-up run, trying the next one: ${(err as Error).message}`);
          continue;
        }
        return net;
      }
    } catch (err) {
      await worker.terminate();
      throw err;
    }
    await worker.terminate();
    throw new ModelLoadError(`${what}: no execution provider could run it (${failures.join('; ')})`);
  }

  /** The model's output for `input` shaped `dims`; rejects on a runtime failure or an output that
   *  is not float32 of the shape `want`. */
  run(input: Float32Array, dims: readonly number[], want: readonly number[]): Promise<Float32Array> {
    const job = this.queue.then(async () => {
      // A copy goes to the worker: the caller keeps its input.
      const copy = input.slice();
      const reply = await this.session.request({ type: 'run', input: copy, dims }, [copy.buffer]);
      const out = reply['output'] as WorkerOutput | null;
      if (!out || out.type !== 'float32' || out.dims.join() !== want.join() || !(out.data instanceof Float32Array)) {
        throw new ModelLoadError(
          `model output ${out ? `${out.type} [${out.dims.join(', ')}]` : 'missing'} does not match the card: float32 [${want.join(', ')}]`,
        );
      }
      return out.data;
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

/** A model file and its card (the .json beside it), read and checked against each other. */
export async function readModelFiles<C extends { sha256: string }>(
  modelPath: string,
  parse: (text: string, where: string) => C,
): Promise<{ bytes: Uint8Array; card: C }> {
  const cardPath = cardPathFor(modelPath);
  let bytes: Uint8Array;
  try {
    bytes = await readFile(modelPath);
  } catch (err) {
    throw new ModelLoadError(`model file ${modelPath} cannot be read: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  let cardText: string;
  try {
    cardText = await readFile(cardPath, 'utf8');
  } catch (err) {
    throw new ModelLoadError(`model card ${cardPath} cannot be read: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  const card = parse(cardText, cardPath);
  const sha = sha256Hex(bytes);
  if (sha !== card.sha256) {
    throw new ModelLoadError(
      `model file ${modelPath} does not match its card ${cardPath}: sha256 ${sha}, card says ${card.sha256} (corrupt or replaced file?)`,
    );
  }
  return { bytes, card };
}

type CardFieldError = (field: string, want: string) => never;

/** Throws a ModelLoadError naming the card, the field and what it must be. */
function cardFieldError(where: string): CardFieldError {
  return (field, want) => {
    throw new ModelLoadError(`model card ${where}: '${field}' must be ${want}`);
  };
}

/** Every card names its model and the sha256 of the file beside it. */
function checkIdentity(c: { name?: unknown; sha256?: unknown }, bad: CardFieldError): void {
  if (typeof c.name !== 'string' || !c.name) bad('name', 'a non-empty string');
  if (typeof c.sha256 !== 'string' || !/^[0-9a-f]{64}$/.test(c.sha256)) bad('sha256', '64 lowercase hex digits');
}

/** The card as JSON, or a ModelLoadError naming the file. */
export function parseJsonCard(text: string, where: string): unknown {
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new ModelLoadError(`model card ${where} is not valid JSON: ${(err as Error).message}`);
  }
}

/** A loaded model: its session and its card. */
abstract class CardModel<C extends { name: string; sha256: string }> {
  protected constructor(
    protected readonly net: OnnxNet,
    readonly card: C,
  ) {}

  /**
   * The model file and its card read and checked, the session opened on the first provider that
   * passes a warm-up run on one zero sample, and the load logged. `kind` names the model in
   * errors and logs ('model', 'polish model').
   */
  protected static async openCard<C extends { name: string; sha256: string }, M extends CardModel<C>>(
    opts: ModelOptions,
    kind: string,
    parse: (text: string, where: string) => C,
    make: (net: OnnxNet, card: C) => M,
  ): Promise<M> {
    const { bytes, card } = await readModelFiles(opts.modelPath, parse);
    const net = await OnnxNet.open(bytes, `${kind} ${opts.modelPath}`, opts, (n) => {
      const m = make(n, card);
      return m.run(new Float32Array(m.inputSize), 1);
    });
    (opts.log ?? (() => {}))('info', `${kind} ${card.name} (sha256 ${card.sha256.slice(0, 12)}) loaded on execution provider '${net.provider}'`);
    return make(net, card);
  }

  /** Values in one input sample. */
  abstract get inputSize(): number;

  /** The model's output for `n` samples of `input`; rejects on a runtime failure. */
  abstract run(input: Float32Array, n: number): Promise<Float32Array>;

  get name(): string {
    return this.card.name;
  }

  get sha256(): string {
    return this.card.sha256;
  }

  get provider(): string {
    return this.net.provider;
  }

  close(): Promise<void> {
    return this.net.close();
  }
}

export class HeatmapModel extends CardModel<ModelCard> {
  private constructor(net: OnnxNet, card: ModelCard) {
    super(net, card);
  }

  get inputSize(): number {
    return this.card.input.width * this.card.input.height;
  }

  /** Values in one output sample. */
  get outputSize(): number {
    return this.card.keypoints.length * this.card.heatmap.width * this.card.heatmap.height;
  }

  static load(opts: ModelOptions): Promise<HeatmapModel> {
    return CardModel.openCard(opts, 'model', parseCard, (net, card) => new HeatmapModel(net, card));
  }

  /** Heatmaps for `n` samples of `input` (n x 1 x H x W); rejects on a runtime failure. */
  run(input: Float32Array, n: number): Promise<Float32Array> {
    const { width, height } = this.card.input;
    if (input.length !== n * this.inputSize) {
      return Promise.reject(new RangeError(`model input holds ${input.length} values, expected ${n}x1x${height}x${width}`));
    }
    const want = [n, this.card.keypoints.length, this.card.heatmap.height, this.card.heatmap.width];
    return this.net.run(input, [n, 1, height, width], want);
  }
}

function parseCard(text: string, where: string): ModelCard {
  const c = parseJsonCard(text, where) as Partial<ModelCard>;
  const bad = cardFieldError(where);
  checkIdentity(c, bad);
  const posInt = (v: unknown) => Number.isInteger(v) && (v as number) > 0;
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

/** The pole polisher's card (models/xpole-polish.json; training/polish.py writes it). */
export interface PolishCard {
  name: string;
  file: string;
  sha256: string;
  input: PolishInput;
  /** Largest move of a pole, frame px. */
  maxMovePx: number;
}

/** The polisher: patches n x 2 x P x P in, canonical offsets n x 2 (frame px) out. */
export class PolishModel extends CardModel<PolishCard> {
  private constructor(net: OnnxNet, card: PolishCard) {
    super(net, card);
  }

  static load(opts: ModelOptions): Promise<PolishModel> {
    return CardModel.openCard(opts, 'polish model', parsePolishCard, (net, card) => new PolishModel(net, card));
  }

  /** One patch: the frame channel and the kind channel. */
  get inputSize(): number {
    return 2 * this.card.input.patch ** 2;
  }

  /** Offsets for `n` patches (polishPatches' layout). */
  run(input: Float32Array, n: number): Promise<Float32Array> {
    const side = this.card.input.patch;
    if (input.length !== n * this.inputSize) {
      return Promise.reject(new RangeError(`polish input holds ${input.length} values, expected ${n}x2x${side}x${side}`));
    }
    return this.net.run(input, [n, 2, side, side], [n, 2]);
  }
}

function parsePolishCard(text: string, where: string): PolishCard {
  const c = parseJsonCard(text, where) as Partial<PolishCard>;
  const bad = cardFieldError(where);
  checkIdentity(c, bad);
  const i = c.input;
  if (!i || !Number.isInteger(i.patch) || i.patch < 4) bad('input.patch', 'an integer of at least 4');
  if (typeof i!.anode !== 'number' || typeof i!.cathode !== 'number' || i!.anode === i!.cathode) {
    bad('input.anode/cathode', 'two different numbers');
  }
  if (!(typeof c.maxMovePx === 'number' && c.maxMovePx > 0)) bad('maxMovePx', 'a positive number');
  return c as PolishCard;
}
