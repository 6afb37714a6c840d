// The inspection pipeline: decode -> corners -> ROI -> crop -> model -> heatmap decoding ->
// corner refinement -> verdict -> Result (SPEC "MQTT" result object). The only module that knows
// the stages' order and times them. A bad frame becomes one ERROR Result, never an exception.
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { FrameError } from '../errors.ts';
import { iou } from '../eval/metrics.ts';
import { decodeFrame, SPEC_LIMITS } from '../frame/decode.ts';
import { FrameBufferPool } from '../frame/frame-buffers.ts';
import { boxFromCanonical, boxToCanonical, canonicalAffine, fromCanonical, toCanonical } from '../frame/orientation.ts';
import type { Box, Corners, ErrorReason, Image, Orientation, Pole, Result } from '../types.ts';
import { detectCornersAsync } from '../vision/corners.ts';
import { decodeHeatmaps, heatmapToCanonical, mergeMirrored, sheetOrderCells, type DecodeMethod, type HeatmapShape } from '../vision/heatmap.ts';
import { cardMismatch, HeatmapModel, ModelLoadError, PolishModel, type Logger, type ModelOptions } from '../vision/model.ts';
import { applyPolish, polishPatches } from '../vision/polish.ts';
import { cropForModelAsync, withMirrored } from '../vision/preprocess.ts';
import { DEFAULT_REFINE_PARAMS, refinePoles, type RefineParams } from '../vision/refine.ts';
import { checkCathodeTips, checkSharedTips, checkSheetCount, DEFAULT_SHEET_COUNT_PARAMS } from '../vision/tip-evidence.ts';
import { backReachPx, DEFAULT_ROI_PARAMS, greyRange, roiBox, roiGroupsAsync, scaledThreshold, type RoiParams } from '../vision/roi.ts';
import { DEFAULT_RECIPE, type Recipe, type Sheet } from './recipe.ts';
import { Slots } from './slots.ts';
import { judge as judgeOverhangs } from './verdict.ts';

const PACKAGE_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

/** The int8 variant `npm run quantize` writes beside a model (NAME-int8.onnx), or null where there is none. */
export function int8Variant(modelPath: string): string | null {
  const file = modelPath.replace(/(\.onnx)?$/, '-int8.onnx');
  return existsSync(file) ? file : null;
}

export interface PipelineOptions {
  /** The ONNX model; its card (same name, .json) sits beside it. */
  modelPath: string;
  /** ONNX Runtime execution providers, tried in order. */
  providers: string[];
  intraOpNumThreads: number;
  /** ONNX Runtime's spinning intra-op threads: off, as measured best with 2 frames in flight (bench/pipeline.ts --spinning). */
  spinning?: boolean;
  /** How this station's frames are brought into canonical orientation (tips +x). */
  orientation: Orientation;
  recipe: Recipe;
  /** The refinement's corners: FAST threshold on a 0..255 scale, scaled to the frame's grey range
   *  (step 1 detects at the lower of this and roi.threshold8 once, for both). */
  cornerThreshold: number;
  /** N: step 1 keeps the strongest N corners (by Harris response) for the ROI and the refinement
   *  (load() sets roi.corners to it). */
  corners: number;
  /** ROI stage parameters; its search detects again (lower thresholds, binned frame) only where
   *  step 1's corners show no stack. */
  roi: RoiParams;
  refine: boolean;
  /** Corner search radius (frame px), patch half side, histogram bins, sub-pixel corners. */
  refineParams: RefineParams;
  decode: DecodeMethod;
  /** Decode the channels together, in the recipe's order (vision/heatmap.ts, sheetOrderCells):
   *  a channel whose argmax is its neighbour's tip takes its own sheet's peak. */
  sheetOrder: boolean;
  /** Run the model a second time on the box around the first pass's poles. */
  secondPass: boolean;
  /** A model for the first pass only, whose poles just place the second pass's box; used with
   *  secondPass where the heatmap model runs on the CPU provider. Absent: the heatmap model's int8
   *  variant (NAME-int8.onnx beside it, `npm run quantize`) where there is one; null: none, the
   *  heatmap model runs both passes. Its card must fit the heatmap model's. */
  firstPassModelPath?: string | null;
  /** How far behind the outermost tip the second pass's box reaches at least, in units of the
   *  recipe's largest overhang (a recessed cathode must lie inside it to be measured). */
  secondPassBackReach: number;
  /** Flip test: the pass that gives the poles also runs its crop mirrored top <-> bottom, and the
   *  two views' heatmaps are averaged. */
  flipTest: boolean;
  /** Where a cathode is below minConfidence after the second pass, look once more at a box
   *  reaching twice as far behind the tips, and take a cathode found there recessed past the limit. */
  deepLook: boolean;
  /** Move each pole to the apex the polish model finds in a full-resolution patch around it
   *  (vision/polish.ts), by at most the card's maxMovePx. */
  polish: boolean;
  /** The polish model (its card beside it); loaded only when `polish` is on. */
  polishModelPath: string;
  /** Scale each cathode's confidence by the image's evidence that a sheet ends at its tip
   *  (vision/tip-evidence.ts): a cathode placed where no cathode ends becomes POLE_MISSING. */
  tipCheck: boolean;
  /** One tip, one pole (vision/tip-evidence.ts, checkSharedTips): a weak pole on the tip of a
   *  neighbour of its kind becomes POLE_MISSING. A line that would rather scrap than ship a cell
   *  measured on a shared tip keeps it on; it costs some overkill at fine pitch. */
  sharedTipCheck: boolean;
  /** The poles and the stack's sheets agree in number (vision/tip-evidence.ts, checkSheetCount): a
   *  cathode whose anodes stand two anode spacings apart, with sheets between them that no pole
   *  stands for, becomes POLE_MISSING, and so does the weaker pole of each tip two poles claim in a
   *  frame with two such tips or more. That is how stacks with more or fewer sheets than the
   *  recipe show. */
  sheetCountCheck: boolean;
  /** How many of the ROI stage's candidate regions (best first) the model may look at before the
   *  frame is ROI_NOT_FOUND: the next one is tried when the model sees no stack in a box. */
  roiCandidates: number;
  /** Largest accepted frame side (FRAME_TOO_LARGE above). */
  maxFrameSide: number;
  /** Frames analysed at once (everything after the decode); more may be decoding meanwhile. The
   *  daemon sets it to pipeline.inFlight and hands over pipeline.decodeAhead more frames. */
  analysisSlots: number;
  /** Warnings (provider fallback) and info; nothing is printed by the pipeline itself. */
  log?: Logger;
}

export const DEFAULT_PIPELINE_OPTIONS: PipelineOptions = {
  modelPath: path.join(PACKAGE_ROOT, 'models/xpole-hrnet.onnx'),
  polishModelPath: path.join(PACKAGE_ROOT, 'models/xpole-polish.onnx'),
  providers: ['tensorrt', 'cuda', 'cpu'],
  intraOpNumThreads: 2,
  orientation: 'tips-right',
  recipe: DEFAULT_RECIPE,
  cornerThreshold: 20,
  corners: DEFAULT_ROI_PARAMS.corners,
  roi: DEFAULT_ROI_PARAMS,
  refine: true,
  refineParams: DEFAULT_REFINE_PARAMS,
  decode: 'dark',
  sheetOrder: true,
  secondPass: true,
  secondPassBackReach: 1.25,
  flipTest: false,
  deepLook: true,
  polish: true,
  tipCheck: true,
  sharedTipCheck: true,
  sheetCountCheck: true,
  roiCandidates: 3,
  maxFrameSide: SPEC_LIMITS.maxSide,
  analysisSlots: Number.POSITIVE_INFINITY,
};

/** A frame to judge; its bytes or pixels are read in place, so leave them alone until the result. */
export type FrameInput =
  | { frame: string; cellId: string | null; bytes: Uint8Array; orientation?: Orientation }
  | { frame: string; cellId: string | null; image: Image; orientation?: Orientation };

export interface FrameIds {
  id: string;
  seq: number;
  ts: string;
}

/** Everything the stages found for one frame (for eval, overlays and ablations). */
export interface Analysis {
  image: Image;
  orientation: Orientation;
  /** Step 1's corners that pass the refinement's threshold, strongest (Harris) first. */
  corners: Corners;
  roi: Box;
  /** The box the heatmaps belong to: the ROI, or the second pass's box around the first poles. */
  crop: Box;
  /** Heatmaps of this frame: K x height x width. */
  heatmaps: Float32Array;
  /** The deeper look's heatmaps and box, and the cathodes taken from it (deepLook). */
  deep?: { crop: Box; heatmaps: Float32Array; cathodes: number[] };
  /** The cells the sheet order decodes `heatmaps` at, once decodePoles has chosen them: the deeper
   *  look and the final poles (and each variant eval scores) read the same heatmaps. */
  sheetCells?: Int32Array;
  timingsMs: Record<string, number>;
}

/** Pole positions in frame pixels, per keypoint in recipe order (NaN = not found). */
export interface PoleSet {
  x: Float64Array;
  y: Float64Array;
  conf: Float64Array;
  source: ('cnn' | 'refined')[];
}

export interface Judged {
  result: Result;
  /** The decoded frame, when decoding succeeded. */
  image?: Image;
  /** Present once the ROI and the model ran. */
  analysis?: Analysis;
  cnn?: PoleSet;
  poles?: PoleSet;
}

// The addon reads frames where they are, without copying them on the event loop: the pipeline
// awaits every stage before it hands a frame back, and callers leave the input alone until then.
const IN_PLACE = { inPlace: true };

const now = () => performance.now();
const ms = (t: number) => Math.round((performance.now() - t) * 100) / 100;

export class Pipeline {
  /** Buffers grey PNG frames are decoded into by judge(), reused from frame to frame. */
  private readonly pixels = new FrameBufferPool();
  /** Which sheet-count mismatches the journal has been told of (noteSheetCount). */
  private readonly sheetCountNoted = new Set<'more' | 'fewer'>();
  /** Frames past the decode wait here for one of options.analysisSlots. */
  private readonly analysisSlots: Slots;

  private constructor(
    readonly options: PipelineOptions,
    private readonly net: HeatmapModel,
    private readonly polisher: PolishModel | null,
    /** The first pass's model (firstPassModelPath, loaded only with a second pass), or the heatmap model. */
    private readonly firstNet: HeatmapModel = net,
  ) {
    this.analysisSlots = new Slots(options.analysisSlots);
  }

  static async load(opts: Partial<PipelineOptions> = {}): Promise<Pipeline> {
    const merged = { ...DEFAULT_PIPELINE_OPTIONS, ...opts };
    const roi: RoiParams = {
      ...merged.roi,
      corners: merged.corners,
      // Far enough behind the tips for the recipe's cathodes (its pixel pitch and limits).
      minBack: Math.max(merged.roi.minBack, backReachPx(merged.recipe)),
    };
    const options = { ...merged, roi };
    if (!(Number.isInteger(options.roiCandidates) && options.roiCandidates >= 1)) {
      throw new RangeError(`roiCandidates must be an integer >= 1, got ${options.roiCandidates}`);
    }
    if (!((Number.isInteger(options.analysisSlots) && options.analysisSlots >= 1) || options.analysisSlots === Number.POSITIVE_INFINITY)) {
      throw new RangeError(`analysisSlots must be an integer >= 1 (or Infinity: no limit), got ${options.analysisSlots}`);
    }
    if (!(options.secondPassBackReach >= 0 && options.secondPassBackReach <= 10)) {
      throw new RangeError(`secondPassBackReach must be from 0 to 10 (times overhangMaxMm), got ${options.secondPassBackReach}`);
    }
    const session = {
      providers: options.providers,
      intraOpNumThreads: options.intraOpNumThreads,
      spinning: options.spinning,
      log: options.log,
    };
    const net = await HeatmapModel.load({ ...session, modelPath: options.modelPath });
    const k = net.card.keypoints.length;
    const names = options.recipe.keypoints;
    if (k !== names.length || net.card.keypoints.some((n, i) => n !== names[i])) {
      await net.close();
      throw new ModelLoadError(
        `model ${net.name} predicts keypoints [${net.card.keypoints.join(' ')}], recipe '${options.recipe.name}' needs [${names.join(' ')}]`,
      );
    }
    let firstNet = net;
    const firstPath = options.firstPassModelPath === undefined ? int8Variant(options.modelPath) : options.firstPassModelPath;
    if (options.secondPass && firstPath !== null) {
      // A CPU-station saving: on TensorRT or CUDA the heatmap model is fast, and the int8 variant's
      // uint8 activations are not TensorRT's int8, so there the heatmap model runs both passes.
      if (net.provider !== 'cpu') {
        options.log?.('info', `the heatmap model runs on '${net.provider}': it runs both passes (a first-pass model is for the CPU provider)`);
      } else {
        firstNet = await Pipeline.loadFirstPass(net, firstPath, session);
      }
    }
    let polisher: PolishModel | null = null;
    if (options.polish) {
      try {
        // From the provider the heatmap model runs on (the ones before it failed already), and on
        // one thread: a small job, and a second pool of threads would fight the heatmap model's for the cores.
        const providers = options.providers.slice(Math.max(0, options.providers.indexOf(net.provider)));
        polisher = await PolishModel.load({ ...session, providers, intraOpNumThreads: 1, modelPath: options.polishModelPath });
      } catch (err) {
        await Promise.all([net.close(), firstNet !== net ? firstNet.close() : undefined]);
        if (err instanceof ModelLoadError) throw new ModelLoadError(`${err.message} (the polish model: pipeline.polish: false runs without it)`);
        throw err;
      }
    }
    return new Pipeline(options, net, polisher, firstNet);
  }

  /**
   * The first-pass model on the CPU provider, checked against the heatmap model: its card must fit,
   * and a quantized variant must have been made from this heatmap model (not a stale file).
   */
  private static async loadFirstPass(net: HeatmapModel, file: string, session: Omit<ModelOptions, 'modelPath'>): Promise<HeatmapModel> {
    const fail = async (message: string, first?: HeatmapModel) => {
      await Promise.all([net.close(), first?.close()]);
      return new ModelLoadError(`${message} (pipeline.firstPassInt8: false runs the heatmap model twice)`);
    };
    let first: HeatmapModel;
    try {
      // One thread: its pass may overlap the other frame's pass of the heatmap model, whose threads already take the cores.
      first = await HeatmapModel.load({ ...session, providers: ['cpu'], intraOpNumThreads: 1, modelPath: file });
    } catch (err) {
      if (!(err instanceof ModelLoadError)) {
        await net.close();
        throw err;
      }
      throw await fail(`first-pass model: ${err.message}`);
    }
    const mismatch = cardMismatch(net.card, first.card);
    if (mismatch) throw await fail(`the first-pass model ${first.name} does not fit the heatmap model ${net.name}: ${mismatch}`, first);
    const from = first.card.quantization?.from?.sha256;
    if (from !== undefined && from !== net.sha256) {
      throw await fail(
        `the first-pass model ${first.name} was quantized from the model with sha256 ${from.slice(0, 12)}, not from the heatmap model ${net.name} (${net.sha256.slice(0, 12)}): quantize it again (npm run quantize)`,
        first,
      );
    }
    session.log?.('info', `first pass: model ${first.name} (sha256 ${first.sha256.slice(0, 12)}) places the second pass's box`);
    return first;
  }

  get model(): { name: string; sha256: string; provider: string } {
    return { name: this.net.name, sha256: this.net.sha256, provider: this.net.provider };
  }

  async close(): Promise<void> {
    await this.net.close();
    if (this.firstNet !== this.net) await this.firstNet.close();
    await this.polisher?.close();
  }

  /**
   * Judges one frame: SPEC's result, an ERROR result for a frame that cannot be judged. The frame
   * is decoded into a buffer reused from frame to frame (nothing of it outlives the call, unlike
   * judgeDetailed's image).
   */
  async judge(input: FrameInput, ids: FrameIds): Promise<Result> {
    let lent: Uint8Array | undefined;
    const pixelBuffer = (n: number) => (lent = this.pixels.take(n)).buffer as ArrayBuffer;
    try {
      return (await this.judgeDetailed(input, ids, {}, pixelBuffer)).result;
    } finally {
      if (lent) this.pixels.give(lent);
    }
  }

  /** judge() plus the intermediate findings (ROI, corners, CNN poles) for overlays and eval. */
  async judgeDetailed(input: FrameInput, ids: FrameIds, variant: Partial<Variant> = {}, pixelBuffer?: (bytes: number) => ArrayBuffer): Promise<Judged> {
    const t0 = now();
    const timingsMs: Record<string, number> = {};
    const base = {
      schema: 'xpole.result/1' as const,
      id: ids.id,
      seq: ids.seq,
      ts: ids.ts,
      frame: input.frame,
      cellId: input.cellId,
      model: this.model,
    };
    let roi: Box | null = null;
    let image: Image | undefined;
    try {
      if ('bytes' in input) {
        const t = now();
        image = await decodeFrame(input.bytes, { minSide: SPEC_LIMITS.minSide, maxSide: this.options.maxFrameSide }, pixelBuffer, IN_PLACE);
        timingsMs.decode = ms(t);
      } else {
        image = checkImage(input.image, this.options.maxFrameSide);
      }
      // Decoded ahead, the frame may wait for an analysis slot: timed apart, as part of total.
      const waitFrom = now();
      await this.analysisSlots.take();
      timingsMs.slotWait = ms(waitFrom);
      try {
        const analysis = await this.analyze(image, input.orientation ?? this.options.orientation, timingsMs);
        roi = analysis.crop;
        const { cnn, poles } = await this.locatePoles(analysis, { ...this.variant(), ...variant }, timingsMs);
        const t = now();
        const result = this.verdict(analysis, poles, base, timingsMs, variant.recipe);
        timingsMs.verdict = ms(t);
        timingsMs.total = ms(t0);
        return { result, image, analysis, cnn, poles };
      } finally {
        this.analysisSlots.give();
      }
    } catch (err) {
      const reason: ErrorReason = err instanceof FrameError ? err.reason : 'INTERNAL';
      const message = err instanceof Error ? err.message : String(err);
      timingsMs.total = ms(t0);
      return {
        result: { ...base, verdict: 'ERROR', reasons: [reason], overhangMm: [], poles: [], roi, timingsMs, error: message },
        image,
      };
    }
  }

  /** The decode / refinement settings in effect (eval varies them per run). */
  variant(): Variant {
    const o = this.options;
    return { decode: o.decode, sheetOrder: o.sheetOrder, refine: o.refine, corners: o.corners, refineParams: o.refineParams, polish: o.polish, tipCheck: o.tipCheck, sharedTipCheck: o.sharedTipCheck, sheetCountCheck: o.sheetCountCheck };
  }

  /** CNN poles and the poles as the variant corrects them (corners, polish, tip check). */
  async locatePoles(a: Analysis, v: Variant, timingsMs: Record<string, number> = {}): Promise<{ cnn: PoleSet; poles: PoleSet }> {
    let t = now();
    const cnn = this.decodePoles(a, v.decode, v.sheetOrder);
    timingsMs.heatmap = ms(t);
    t = now();
    let located = v.refine ? this.refine(a, cnn, v.corners, v.refineParams) : cnn;
    timingsMs.refine = ms(t);
    if (v.polish) {
      t = now();
      located = await this.polish(a, located);
      timingsMs.polish = ms(t);
    }
    if (!v.tipCheck && !v.sharedTipCheck && !v.sheetCountCheck) return { cnn, poles: located };
    t = now();
    const { recipe } = this.options;
    let poles = located;
    if (v.tipCheck) poles = { ...poles, conf: checkCathodeTips(a.image, a.orientation, poles, recipe.sheets, recipe.minConfidence) };
    if (v.sharedTipCheck) poles = { ...poles, conf: checkSharedTips(a.image.width, a.image.height, a.orientation, poles, recipe.sheets) };
    if (v.sheetCountCheck) {
      const count = checkSheetCount(a.image.width, a.image.height, a.orientation, poles, recipe.sheets);
      poles = { ...poles, conf: count.conf };
      this.noteSheetCount(count, recipe);
    }
    timingsMs.tips = ms(t);
    return { cnn, poles };
  }

  /** The first frame whose poles and sheets disagree in number tells the journal what it may mean,
   *  once a kind: on a line whose cells do not fit the recipe every frame would, and the verdicts
   *  say the rest. */
  private noteSheetCount({ spacings, shared }: { spacings: Float64Array; shared: number }, recipe: Recipe): void {
    const note = (kind: 'more' | 'fewer', shows: () => string) => {
      if (this.sheetCountNoted.has(kind)) return;
      this.sheetCountNoted.add(kind);
      const anodes = recipe.sheets.filter((k) => k === 'A').length;
      this.options.log?.(
        'warning',
        `a frame shows ${shows()}: POLE_MISSING. If most frames FAIL this way, the cells may have ${kind} sheets than recipe '${recipe.name}' ` +
          `(${anodes} anodes), and the model knows only that recipe (said once)`,
      );
    };
    const gap = spacings.findIndex((s) => s >= DEFAULT_SHEET_COUNT_PARAMS.emptyFrom);
    const names = recipe.keypoints;
    if (gap > 0) note('more', () => `sheets without a pole between ${names[gap - 1]} and ${names[gap + 1]} (${spacings[gap]!.toFixed(1)} anode spacings apart)`);
    if (shared >= DEFAULT_SHEET_COUNT_PARAMS.manyShared) note('fewer', () => `${shared} tips that two poles each claim`);
  }

  /** Corners, ROI, crop and model for one decoded frame. Throws FrameError. */
  async analyze(image: Image, orientation: Orientation, timingsMs: Record<string, number> = {}): Promise<Analysis> {
    const o = this.options;
    let t = now();
    // SPEC step 1, once for the ROI and the refinement: the N strongest oFAST corners of the frame.
    // A corner's FAST score is the highest threshold it passes, so the refinement's corners (at
    // cornerThreshold) are those of one detection at the lower threshold with the score to pass.
    const range = greyRange(image);
    const roiThreshold = scaledThreshold(range, image.depth, o.roi.threshold8);
    const refineThreshold = scaledThreshold(range, image.depth, o.cornerThreshold);
    const found = await detectCornersAsync(image, { threshold: Math.min(roiThreshold, refineThreshold), maxCorners: o.roi.corners }, IN_PLACE);
    // Strongest first already: the addon ranks a maxCorners detection by Harris response.
    const corners = withScoreAtLeast(found, refineThreshold);
    timingsMs.corners = ms(t);
    t = now();
    // The ROI stage starts from those corners and, where they show no stack, searches further
    // (lower thresholds, the 2x2-binned frame): on the seed-3 test set it holds every pole in
    // 98.8% of the frames against 93.3% from step 1's corners alone (docs/inference.md).
    const stepOne = roiThreshold <= refineThreshold ? { threshold: roiThreshold, corners: found } : undefined;
    const groups = await roiGroupsAsync(image, orientation, o.roi, stepOne, IN_PLACE);
    timingsMs.roi = ms(t);
    // SPEC's ROI is the best group's box. Where the model sees no stack in it (a fixture's edge
    // outscored a small stack's tips), the next groups' boxes get a look, roiCandidates in all.
    // A box the stage ranked lower must show the stack nearly whole: at most one pole short.
    const k = this.net.card.keypoints.length;
    const seen: Box[] = [];
    let notSeen: FrameError | undefined;
    for (const group of groups) {
      if (seen.length === o.roiCandidates) break;
      t = now();
      const roi = roiBox(image, group, orientation, o.roi);
      timingsMs.roi += ms(t);
      if (seen.some((b) => iou(b, roi) > 0.5)) continue;
      seen.push(roi);
      const view = await this.lookAt(image, orientation, corners, roi, timingsMs, seen.length === 1 ? (3 * k) / 4 : k - 1);
      if ('heatmaps' in view) return view;
      notSeen ??= view.error;
    }
    throw seen.length > 1 ? new FrameError('ROI_NOT_FOUND', `${notSeen!.message} (nor in ${seen.length - 1} other candidate regions)`) : notSeen!;
  }

  /** The model's passes on one ROI; the stack gate's error when it sees no stack there. */
  private async lookAt(
    image: Image,
    orientation: Orientation,
    corners: Corners,
    roi: Box,
    timingsMs: Record<string, number>,
    minConfident: number,
    first = this.firstNet,
  ): Promise<Analysis | { error: FrameError }> {
    const o = this.options;
    let crop = roi;
    // The flip test goes to the pass whose heatmaps give the poles: the first only places the second's box.
    let heatmaps = await this.runModel(first, image, orientation, crop, timingsMs, o.flipTest && !o.secondPass);
    if (o.secondPass) {
      // The model was trained on boxes near the reference box (the poles' box + 10%); the ROI
      // stage's box is larger, so a second pass on the box around the first poles sees them bigger.
      // A first-pass model may place no box, or one the heatmap model sees no stack in, where the
      // heatmap model's own first pass would: then the heatmap model looks, as without one.
      const tight = this.poleBox(image, orientation, this.decodeIn(image, orientation, crop, heatmaps, 'dark'));
      if (tight) {
        crop = tight;
        heatmaps = await this.runModel(this.net, image, orientation, crop, timingsMs, o.flipTest);
      } else if (first !== this.net) {
        return this.lookAt(image, orientation, corners, roi, timingsMs, minConfident, this.net);
      }
    }
    const error = this.stackNotSeen(heatmaps, minConfident);
    if (error && first !== this.net) return this.lookAt(image, orientation, corners, roi, timingsMs, minConfident, this.net);
    if (error) return { error };
    const seen: Analysis = { image, orientation, corners, roi, crop, heatmaps, timingsMs };
    if (o.secondPass && o.deepLook) seen.deep = await this.deepLook(seen);
    return seen;
  }

  /**
   * A cathode recessed far past the limit can sit at the back of the second box, where the model
   * sees it at 0.1-0.3: on validation that was the largest group of PCS@1.0 failures (16 of 82),
   * judged POLE_MISSING instead of OVERHANG_HIGH. For cathodes below minConfidence the model looks
   * again at a box reaching twice as far behind the tips. A cathode is taken from there only when
   * that look is confident and puts it recessed past overhangMaxMm behind both its anodes, by more
   * than one heatmap cell (what another decoding may move it), and the refinement leaves it where
   * it is: the frame FAILs either way, the look changes the reason and the position, never the verdict.
   */
  private async deepLook(a: Analysis): Promise<Analysis['deep']> {
    const { recipe, secondPassBackReach } = this.options;
    const min = recipe.minConfidence;
    const poles = this.decodePoles(a, 'dark', this.options.sheetOrder);
    const weak = recipe.sheets.flatMap((s, i) => (s === 'C' && poles.conf[i]! < min ? [i] : []));
    if (weak.length === 0) return undefined;
    const box = this.poleBox(a.image, a.orientation, poles, 2 * secondPassBackReach);
    if (!box) return undefined;
    const heatmaps = await this.runModel(this.net, a.image, a.orientation, box, a.timingsMs, false);
    const deep = this.decodeIn(a.image, a.orientation, box, heatmaps, 'dark');
    const { width, height } = a.image;
    const canonicalX = (p: PoleSet, i: number) => toCanonical(p.x[i]!, p.y[i]!, width, height, a.orientation)[0];
    const cell = boxToCanonical(box, width, height, a.orientation)[2] / this.net.card.heatmap.width;
    const limitPx = recipe.overhangMaxMm / recipe.pixelPitchMm + cell;
    const cathodes = weak.filter((i) => {
      if (!(deep.conf[i]! >= min)) return false;
      const anodes = [i - 1, i + 1].filter((j) => poles.conf[j]! >= min);
      if (anodes.length < 2) return false;
      const x = canonicalX(deep, i);
      return anodes.every((j) => canonicalX(poles, j) - x > limitPx);
    });
    return cathodes.length ? { crop: box, heatmaps, cathodes } : undefined;
  }

  /**
   * A cell with a missing or folded sheet still shows nearly all of its poles; an ROI on noise, on
   * a fixture or on the wrong structure does not (pure noise: 17 of 31 with the first model). With
   * fewer than 3/4 of the poles confident (the caller's `minConfident`) the frame cannot be judged
   * there: ROI_NOT_FOUND, not a FAIL whose reason would blame the cell.
   */
  private stackNotSeen(heatmaps: Float32Array, minConfident: number): FrameError | null {
    const shape = this.heatmapShape();
    const min = this.options.recipe.minConfidence;
    const { conf } = decodeHeatmaps(heatmaps, shape, { method: 'argmax', sigma: this.net.card.heatmap.sigma });
    const confident = conf.reduce((n, c) => (c >= min ? n + 1 : n), 0);
    if (confident >= minConfident) return null;
    return new FrameError('ROI_NOT_FOUND', `the model sees no stack in the ROI: ${confident} of ${shape.k} poles reach confidence ${min}`);
  }

  private async runModel(net: HeatmapModel, image: Image, orientation: Orientation, box: Box, timingsMs: Record<string, number>, flip: boolean): Promise<Float32Array> {
    let t = now();
    const { card } = net;
    const crop = await cropForModelAsync(image, box, orientation, card.input, IN_PLACE);
    const input = flip ? withMirrored(crop, card.input) : crop;
    timingsMs.preprocess = (timingsMs.preprocess ?? 0) + ms(t);
    t = now();
    try {
      if (!flip) return await net.run(input, 1);
      const both = await net.run(input, 2);
      const shape = { k: card.keypoints.length, width: card.heatmap.width, height: card.heatmap.height };
      const plane = shape.k * shape.width * shape.height;
      return mergeMirrored(both.subarray(0, plane), both.subarray(plane, 2 * plane), shape);
    } catch (err) {
      throw new FrameError('MODEL_ERROR', `the model failed on this frame: ${(err as Error).message}`);
    } finally {
      timingsMs.model = (timingsMs.model ?? 0) + ms(t);
    }
  }

  /**
   * SPEC's reference box around the confident poles of a pass (their tight box, reaching at
   * least `reach` x the largest overhang behind the tips, grown by 0.1 of its larger side), in
   * frame pixels; null when too few poles are confident to trust it.
   */
  private poleBox(image: Image, orientation: Orientation, poles: PoleSet, reach = this.options.secondPassBackReach): Box | null {
    const { width, height } = image;
    let x0 = Infinity, y0 = Infinity, x1 = -Infinity, y1 = -Infinity, n = 0;
    for (let i = 0; i < poles.conf.length; i++) {
      if (!(poles.conf[i]! >= this.options.recipe.minConfidence)) continue;
      const [xc, yc] = toCanonical(poles.x[i]!, poles.y[i]!, width, height, orientation);
      x0 = Math.min(x0, xc); x1 = Math.max(x1, xc); y0 = Math.min(y0, yc); y1 = Math.max(y1, yc);
      n++;
    }
    if (n < poles.conf.length / 2) return null;
    // A cathode recessed past the spec limit must lie inside the box, or the second pass puts it
    // on the regular tip line (a PASS for a FAIL): the box reaches that far behind the outermost tip.
    x0 = Math.min(x0, x1 - backReachPx(this.options.recipe, reach));
    const m = 0.1 * Math.max(x1 - x0, y1 - y0);
    return boxFromCanonical([x0 - m, y0 - m, x1 - x0 + 2 * m, y1 - y0 + 2 * m], width, height, orientation);
  }

  /** CNN poles in frame pixels from the heatmaps (the deeper look's cathodes from its own). */
  decodePoles(a: Analysis, method: DecodeMethod, sheetOrder: boolean): PoleSet {
    const cells = sheetOrder ? (a.sheetCells ??= sheetOrderCells(a.heatmaps, this.heatmapShape(), this.options.recipe.sheets)) : undefined;
    const poles = this.decodeIn(a.image, a.orientation, a.crop, a.heatmaps, method, cells);
    if (a.deep) {
      const deep = this.decodeIn(a.image, a.orientation, a.deep.crop, a.deep.heatmaps, method);
      for (const i of a.deep.cathodes) {
        poles.x[i] = deep.x[i]!;
        poles.y[i] = deep.y[i]!;
        poles.conf[i] = deep.conf[i]!;
      }
    }
    return poles;
  }

  private heatmapShape(): HeatmapShape {
    const { keypoints, heatmap } = this.net.card;
    return { k: keypoints.length, width: heatmap.width, height: heatmap.height };
  }

  /** Poles in frame pixels from one pass's heatmaps over its box, each channel at its argmax or at `cells`. */
  private decodeIn(image: Image, orientation: Orientation, crop: Box, heatmaps: Float32Array, method: DecodeMethod, cells?: Int32Array): PoleSet {
    const card = this.net.card;
    const shape = this.heatmapShape();
    const { k } = shape;
    const peaks = decodeHeatmaps(heatmaps, shape, { method, sigma: card.heatmap.sigma, cells });
    const { width, height } = image;
    const cb = boxToCanonical(crop, width, height, orientation);
    const x = new Float64Array(k);
    const y = new Float64Array(k);
    for (let i = 0; i < k; i++) {
      const [xc, yc] = heatmapToCanonical(peaks.hx[i]!, peaks.hy[i]!, cb, card.heatmap);
      [x[i], y[i]] = fromCanonical(xc, yc, width, height, orientation);
    }
    return { x, y, conf: Float64Array.from(peaks.conf), source: new Array(k).fill('cnn') };
  }

  /** Corner post-correction of the confident poles with the N strongest corners. */
  refine(a: Analysis, cnn: PoleSet, n: number, params: RefineParams): PoleSet {
    const min = this.options.recipe.minConfidence;
    // Poles below the confidence floor are POLE_MISSING anyway; they would pollute the references.
    // The deeper look's cathodes stay where it put them (its check of their recess holds).
    const keep = (i: number) => cnn.conf[i]! >= min && !a.deep?.cathodes.includes(i);
    const px = cnn.x.map((v, i) => (keep(i) ? v : Number.NaN));
    const py = cnn.y.map((v, i) => (keep(i) ? v : Number.NaN));
    const shift = params.cornerOffset ? frameOffsets(params.cornerOffset, a.image, a.orientation) : null;
    const refined = refinePoles(a.image, a.corners, px, py, this.options.recipe.sheets, params, n, shift);
    const out: PoleSet = { x: cnn.x.slice(), y: cnn.y.slice(), conf: cnn.conf, source: cnn.source.slice() };
    refined.forEach((r, i) => {
      if (r.source !== 'refined') return;
      out.x[i] = r.x;
      out.y[i] = r.y;
      out.source[i] = 'refined';
    });
    return out;
  }

  /** The poles moved to the apexes the polish model finds at full resolution. */
  async polish(a: Analysis, p: PoleSet): Promise<PoleSet> {
    if (!this.polisher) throw new Error('the polish model is not loaded (PipelineOptions.polish is off)');
    const { input, maxMovePx } = this.polisher.card;
    const index = [...p.x.keys()].filter((i) => Number.isFinite(p.x[i]!) && Number.isFinite(p.y[i]!));
    if (index.length === 0) return p;
    const patches = polishPatches(a.image, a.orientation, p.x, p.y, this.options.recipe.sheets, index, input);
    let offsets: Float32Array;
    try {
      offsets = await this.polisher.run(patches, index.length);
    } catch (err) {
      throw new FrameError('MODEL_ERROR', `the polish model failed on this frame: ${(err as Error).message}`);
    }
    const { x, y } = applyPolish(a.image.width, a.image.height, a.orientation, p.x, p.y, index, offsets, maxMovePx);
    return { ...p, x, y };
  }

  /** SPEC's result for located poles; `recipe` overrides the configured one (eval: per-image pitch). */
  verdict(a: Analysis, p: PoleSet, base: ResultBase, timingsMs: Record<string, number>, recipe: Recipe = this.options.recipe): Result {
    const { width, height } = a.image;
    const canonical = recipe.keypoints.map((_, i) => ({
      x: toCanonical(p.x[i]!, p.y[i]!, width, height, a.orientation)[0],
      conf: p.conf[i]!,
    }));
    const j = judgeOverhangs(canonical, recipe);
    const poles: Pole[] = recipe.keypoints.map((name, i) => ({
      name,
      x: round3(p.x[i]!),
      y: round3(p.y[i]!),
      conf: round3(p.conf[i]!),
      source: p.source[i]!,
    }));
    return {
      ...base,
      verdict: j.verdict,
      reasons: j.reasons,
      overhangMm: j.overhangMm.map((mm) => (mm === null ? null : round3(mm))),
      poles,
      // The box the poles were found in: the ROI stage's, tightened by the second pass (the
      // deeper look's, which holds it, where a cathode came from there).
      roi: (a.deep?.crop ?? a.crop).map(round3) as Box,
      timingsMs,
    };
  }
}

export interface Variant {
  decode: DecodeMethod;
  /** The channels decoded together in the sheets' order (PipelineOptions.sheetOrder). */
  sheetOrder: boolean;
  refine: boolean;
  /** Refinement looks at the first `corners` (strongest) corners only. */
  corners: number;
  refineParams: RefineParams;
  /** The polish model's move to the apex (PipelineOptions.polish). */
  polish: boolean;
  /** The tip evidence check (PipelineOptions.tipCheck). */
  tipCheck: boolean;
  /** One tip, one pole (PipelineOptions.sharedTipCheck). */
  sharedTipCheck: boolean;
  /** The poles and the sheets agree in number (PipelineOptions.sheetCountCheck). */
  sheetCountCheck: boolean;
  recipe?: Recipe;
}

export type ResultBase = Omit<Result, 'verdict' | 'reasons' | 'overhangMm' | 'poles' | 'roi' | 'timingsMs'>;

function round3(v: number): number {
  return Math.round(v * 1000) / 1000;
}

/** The corners a detection at `threshold` would also have found (FAST score >= threshold), in their order. */
function withScoreAtLeast(c: Corners, threshold: number): Corners {
  const keep = Array.from({ length: c.count }, (_, i) => i).filter((i) => c.score[i]! >= threshold);
  if (keep.length === c.count) return c;
  const pick = (arr: Float32Array) => Float32Array.from(keep, (i) => arr[i]!);
  return { count: keep.length, x: pick(c.x), y: pick(c.y), score: pick(c.score), harris: pick(c.harris), angle: pick(c.angle) };
}

/** Canonical offset vectors as frame-pixel vectors (orientations are rotations and mirrors). */
function frameOffsets(o: Record<Sheet, [number, number]>, img: Image, orientation: Orientation): Record<Sheet, [number, number]> {
  const { exx, exy, eyx, eyy } = canonicalAffine(img.width, img.height, orientation);
  const vec = ([dx, dy]: [number, number]): [number, number] => [dx * exx + dy * eyx, dx * exy + dy * eyy];
  return { A: vec(o.A), C: vec(o.C) };
}

/** An Image handed in directly (simulator, tests) gets the checks decodeFrame does on files. */
function checkImage(img: Image, maxSide: number): Image {
  const { width, height, depth, pixels } = img;
  if (depth !== 8 && depth !== 16) throw new FrameError('BAD_FRAME', `bit depth ${String(depth)}: frames are 8- or 16-bit`);
  if (!(Number.isInteger(width) && Number.isInteger(height) && width > 0 && height > 0)) {
    throw new FrameError('BAD_FRAME', `the image is empty (${width}x${height})`);
  }
  if (width > maxSide || height > maxSide) {
    throw new FrameError('FRAME_TOO_LARGE', `${width}x${height} exceeds the largest accepted frame of ${maxSide} pixels a side`);
  }
  if (width < SPEC_LIMITS.minSide || height < SPEC_LIMITS.minSide) {
    throw new FrameError('BAD_FRAME', `${width}x${height} is smaller than the smallest accepted frame of ${SPEC_LIMITS.minSide} pixels a side`);
  }
  const want = depth === 16 ? Uint16Array : Uint8Array;
  if (!(pixels instanceof want) || pixels.length !== width * height) {
    throw new FrameError('BAD_FRAME', `pixel buffer does not match a ${width}x${height} ${depth}-bit frame`);
  }
  return img;
}
