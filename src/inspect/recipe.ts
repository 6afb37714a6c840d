// A cell recipe: the sheet stack (top to bottom in canonical orientation) and the spec limits.
import { UsageError } from '../errors.ts';

export type Sheet = 'A' | 'C';

export interface Recipe {
  name: string;
  /** Sheets from top to bottom, anodes covering cathodes on both sides: A C A ... C A. */
  sheets: Sheet[];
  /** Keypoint names in order: A0, C0, A1, ..., one per sheet. */
  keypoints: string[];
  pixelPitchMm: number;
  overhangMinMm: number;
  overhangMaxMm: number;
  /** A keypoint below this heatmap confidence is POLE_MISSING. */
  minConfidence: number;
}

/** The recipe of `anodes` anodes interleaved with `anodes - 1` cathodes. */
export function makeRecipe(
  name: string,
  anodes: number,
  limits: { pixelPitchMm?: number; overhangMinMm?: number; overhangMaxMm?: number; minConfidence?: number } = {},
): Recipe {
  if (!Number.isInteger(anodes) || anodes < 2 || anodes > 200) {
    throw new UsageError(`recipe '${name}': anodes must be an integer from 2 to 200, got ${anodes}`);
  }
  const sheets: Sheet[] = [];
  const keypoints: string[] = [];
  for (let i = 0; i < anodes; i++) {
    sheets.push('A');
    keypoints.push(`A${i}`);
    if (i < anodes - 1) {
      sheets.push('C');
      keypoints.push(`C${i}`);
    }
  }
  const recipe: Recipe = {
    name,
    sheets,
    keypoints,
    pixelPitchMm: limits.pixelPitchMm ?? 0.02,
    overhangMinMm: limits.overhangMinMm ?? 0.4,
    overhangMaxMm: limits.overhangMaxMm ?? 1.6,
    minConfidence: limits.minConfidence ?? 0.5,
  };
  if (!(recipe.pixelPitchMm > 0)) throw new UsageError(`recipe '${name}': pixelPitchMm must be > 0`);
  if (!(recipe.overhangMinMm < recipe.overhangMaxMm)) {
    throw new UsageError(`recipe '${name}': overhangMinMm must be below overhangMaxMm`);
  }
  return recipe;
}

/** SPEC's default recipe: 16 anodes, 15 cathodes, 31 keypoints. */
export const DEFAULT_RECIPE: Recipe = makeRecipe('stack-a16c15', 16);
