// SPEC "Verdicts" and the overhang formula, in canonical orientation.
import type { FailReason, Verdict } from '../types.ts';
import type { Recipe } from './recipe.ts';

export interface CanonicalPole {
  /** x in canonical orientation (tips point +x). */
  x: number;
  conf: number;
}

export interface Judgement {
  verdict: Exclude<Verdict, 'ERROR'>;
  reasons: FailReason[];
  /** One value per cathode, in mm; null where a neighbouring pole is missing. */
  overhangMm: (number | null)[];
}

/**
 * Overhang of cathode Cj = min(x(Aj) - x(Cj), x(Aj+1) - x(Cj)) * pitch.
 * `poles` follow recipe.keypoints order; a pole below minConfidence is POLE_MISSING and the
 * overhangs that need it are null (not judged against the limits: the missing pole already fails).
 */
export function judge(poles: readonly CanonicalPole[], recipe: Recipe): Judgement {
  if (poles.length !== recipe.keypoints.length) {
    throw new RangeError(`judge: expected ${recipe.keypoints.length} poles for recipe '${recipe.name}', got ${poles.length}`);
  }
  const reasons = new Set<FailReason>();
  const present = poles.map((p) => Number.isFinite(p.x) && p.conf >= recipe.minConfidence);
  if (present.some((ok) => !ok)) reasons.add('POLE_MISSING');
  const overhangMm: (number | null)[] = [];
  for (let i = 0; i < recipe.sheets.length; i++) {
    if (recipe.sheets[i] !== 'C') continue;
    // Recipes interleave A C A, so a cathode's neighbours are the sheets just above and below.
    if (!present[i] || !present[i - 1] || !present[i + 1]) {
      overhangMm.push(null);
      continue;
    }
    const px = Math.min(poles[i - 1]!.x - poles[i]!.x, poles[i + 1]!.x - poles[i]!.x);
    const mm = px * recipe.pixelPitchMm;
    overhangMm.push(mm);
    if (mm < recipe.overhangMinMm) reasons.add('OVERHANG_LOW');
    if (mm > recipe.overhangMaxMm) reasons.add('OVERHANG_HIGH');
  }
  const order: FailReason[] = ['OVERHANG_LOW', 'OVERHANG_HIGH', 'POLE_MISSING'];
  const list = order.filter((r) => reasons.has(r));
  return { verdict: list.length ? 'FAIL' : 'PASS', reasons: list, overhangMm };
}
