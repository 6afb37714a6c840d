// The pipeline options a configuration asks for: one mapping for `run`, `inspect` and `eval`.
// Type-only imports keep the native addon and ONNX Runtime unloaded until the config is valid.
import type { PipelineOptions } from '../inspect/pipeline.ts';
import type { Logger } from '../vision/model.ts';
import { DEFAULT_REFINE_PARAMS } from '../vision/refine.ts';
import { recipeOf } from './index.ts';
import type { Config } from './schema.ts';

export function pipelineOptionsFromConfig(config: Config, log?: Logger): Omit<PipelineOptions, 'roi'> {
  const p = config.pipeline;
  return {
    modelPath: config.model.path,
    polishModelPath: config.model.polishPath,
    providers: [...config.model.providers],
    intraOpNumThreads: config.model.intraOpNumThreads,
    orientation: config.orientation,
    recipe: recipeOf(config),
    cornerThreshold: p.cornerThreshold,
    corners: p.corners,
    refine: p.refine,
    refineParams: { ...DEFAULT_REFINE_PARAMS, radius: p.refineRadius },
    decode: p.decode,
    secondPass: p.secondPass,
    // true: the model's int8 variant where there is one (the pipeline's default); false: none.
    ...(p.firstPassInt8 ? {} : { firstPassModelPath: null }),
    secondPassBackReach: p.secondPassBackReach,
    deepLook: p.deepLook,
    polish: p.polish,
    tipCheck: p.tipCheck,
    sharedTipCheck: p.sharedTipCheck,
    sheetCountCheck: p.sheetCountCheck,
    sheetOrder: p.sheetOrder,
    flipTest: p.flipTest,
    roiCandidates: p.roiCandidates,
    maxFrameSide: p.maxFrameSide,
    analysisSlots: p.inFlight,
    log,
  };
}
