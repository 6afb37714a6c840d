// The HRNet heatmap model: an ONNX Runtime session over the model contract's tensors
// (input float32 [N, 1, H, W] -> heatmaps float32 [N, K, H/4, W/4]). Execution providers are
// tried in order, each on its own (onnxruntime-node throws at session creation when a
// provider's libraries are missing), so the one in use is known and can be reported.
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import ort from 'onnxruntime-node';

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

export class HeatmapModel {
  /** Runs go one at a time: concurrent pipeline frames overlap their other stages, not the model. */
  private queue: Promise<unknown> = Promise.resolve();

  private constructor(
    private readonly session: ort.InferenceSession,
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
    // ORT's own logger prints a missing provider library as an error on stderr; it is reported
    // through our logger as a warning instead (ORT takes the level from its first session).
    ort.env.logLevel = 'fatal';
    const failures: string[] = [];
    for (const provider of opts.providers) {
      let session: ort.InferenceSession;
      try {
        session = await ort.InferenceSession.create(bytes, {
          executionProviders: [provider],
          intraOpNumThreads: opts.intraOpNumThreads,
          interOpNumThreads: 1,
          graphOptimizationLevel: 'all',
          logSeverityLevel: 4,
          // Idle intra-op threads spin by default, burning the cores that decode and the corner
          // detector of the other frame in flight need (2 cores here, CPU provider).
          extra: { session: { intra_op: { allow_spinning: opts.spinning ? '1' : '0' } } },
        });
      } catch (err) {
        const why = (err as Error).message.split('\n')[0];
        failures.push(`${provider}: ${why}`);
        log('warning', `execution provider '${provider}' unavailable, trying the next one: ${why}`);
        continue;
      }
      const model = new HeatmapModel(session, card, provider);
      try {
        await model.run(new Float32Array(model.inputSize), 1);
      } catch (err) {
        await session.release();
        if (err instanceof ModelLoadError) throw err;
        failures.push(`${provider}: warm-up failed: ${(err as Error).message}`);
        log('warning', `execution provider '${provider}' failed the warm-up run, trying the next one: ${(err as Error).message}`);
        continue;
      }
      log('info', `model ${card.name} (sha256 ${card.sha256.slice(0, 12)}) loaded on execution provider '${provider}'`);
      return model;
    }
    throw new ModelLoadError(`model ${opts.modelPath}: no execution provider could run it (${failures.join('; ')})`);
  }

  /** Heatmaps for `n` samples of `input` (n x 1 x H x W); rejects on a runtime failure. */
  run(input: Float32Array, n: number): Promise<Float32Array> {
    const { width, height } = this.card.input;
    if (input.length !== n * width * height) {
      return Promise.reject(new RangeError(`model input holds ${input.length} values, expected ${n}x1x${height}x${width}`));
    }
    const job = this.queue.then(async () => {
      const feeds = { input: new ort.Tensor('float32', input, [n, 1, height, width]) };
      const out = await this.session.run(feeds);
      const hm = out['heatmaps'] ?? Object.values(out)[0];
      const k = this.card.keypoints.length;
      const want = [n, k, this.card.heatmap.height, this.card.heatmap.width];
      if (!hm || hm.type !== 'float32' || hm.dims.join() !== want.join()) {
        throw new ModelLoadError(
          `model output ${hm ? `${hm.type} [${hm.dims.join(', ')}]` : 'missing'} does not match the card: float32 [${want.join(', ')}]`,
        );
      }
      return hm.data as Float32Array;
    });
    this.queue = job.catch(() => undefined);
    return job;
  }

  async close(): Promise<void> {
    await this.queue;
    await this.session.release();
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
