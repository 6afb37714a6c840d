import { describe, expect, it } from 'vitest';
import { fromCanonical, toCanonical } from '../src/frame/orientation.ts';
import { judge } from '../src/inspect/verdict.ts';
import { DEFAULT_RECIPE, makeRecipe } from '../src/inspect/recipe.ts';
import { renderFrame } from '../src/synth/frame.ts';
import { ORIENTATIONS, type Image } from '../src/types.ts';
import {
  cathodeStepRatios,
  checkCathodeTips,
  DEFAULT_TIP_STEP_PARAMS,
  tipEvidenceFactor,
  tipStep,
} from '../src/vision/tip-evidence.ts';

// A drawn stack in canonical orientation: 5 anodes (tips at x = 120) and 4 cathodes (tips at
// x = 90), 3 px thick, pitch 12 px, material darker than the open field.
const RECIPE = makeRecipe('a5c4', 5);
const ANODE_TIP = 120;
const CATHODE_TIP = 90;
function drawnStack(open = 200, sheet = 80): { img: Image; x: Float64Array; y: Float64Array } {
  const width = 256, height = 256;
  const pixels = new Uint16Array(width * height).fill(open);
  const x = new Float64Array(9);
  const y = new Float64Array(9);
  for (let i = 0; i < 9; i++) {
    const yc = 80 + 6 * i;
    const tip = i % 2 === 0 ? ANODE_TIP : CATHODE_TIP;
    for (let yy = yc - 1; yy <= yc + 1; yy++) for (let xx = 20; xx <= tip; xx++) pixels[yy * width + xx] = sheet;
    x[i] = tip;
    y[i] = yc;
  }
  return { img: { width, height, depth: 16, pixels }, x, y };
}

describe('tipStep', () => {
  it('is the intensity behind the tip minus ahead of it, along the given direction', () => {
    const { img } = drawnStack();
    expect(tipStep(img, CATHODE_TIP, 86, 1, 0)).toBeCloseTo(80 - 200, 6);
    // Ahead in the gap between the anodes: the open field on both sides.
    expect(tipStep(img, CATHODE_TIP + 15, 86, 1, 0)).toBeCloseTo(0, 6);
    // Looking from the other side turns the step over.
    expect(tipStep(img, CATHODE_TIP, 86, -1, 0)).toBeCloseTo(200 - 80, 6);
  });
});

describe('cathodeStepRatios', () => {
  it('is about 1 at every true cathode tip and NaN at the anodes', () => {
    const { img, x, y } = drawnStack();
    const r = cathodeStepRatios(img, x, y, RECIPE.sheets, [1, 0]);
    for (let i = 0; i < 9; i++) {
      if (i % 2 === 0) expect(r[i]).toBeNaN();
      else expect(r[i]).toBeCloseTo(1, 6);
    }
  });

  it('is about 0 for a cathode placed in the gap where no cathode ends, whatever the polarity', () => {
    for (const [open, sheet] of [[200, 80], [80, 200]]) {
      const { img, x, y } = drawnStack(open, sheet);
      x[3] = CATHODE_TIP + 15;
      const r = cathodeStepRatios(img, x, y, RECIPE.sheets, [1, 0]);
      expect(Math.abs(r[3]!)).toBeLessThan(0.05);
      expect(r[1]).toBeCloseTo(1, 6);
      expect(tipEvidenceFactor(r[3]!)).toBeLessThan(0.25);
    }
  });

  it('gives no verdict (NaN) with fewer than 3 cathodes or a frame with no step at all', () => {
    const { img, x, y } = drawnStack();
    x[1] = x[3] = Number.NaN;
    expect(Array.from(cathodeStepRatios(img, x, y, RECIPE.sheets, [1, 0])).every(Number.isNaN)).toBe(true);
    const flat: Image = { width: 256, height: 256, depth: 8, pixels: new Uint8Array(256 * 256).fill(90) };
    const { x: x2, y: y2 } = drawnStack();
    expect(Array.from(cathodeStepRatios(flat, x2, y2, RECIPE.sheets, [1, 0])).every(Number.isNaN)).toBe(true);
  });
});

describe('tipEvidenceFactor', () => {
  it('keeps a confidence at full evidence, scales it below fullAt, zeroes it at no or reversed step', () => {
    const full = DEFAULT_TIP_STEP_PARAMS.fullAt;
    expect(tipEvidenceFactor(Number.NaN)).toBe(1);
    expect(tipEvidenceFactor(1.3)).toBe(1);
    expect(tipEvidenceFactor(full)).toBe(1);
    expect(tipEvidenceFactor(full / 2)).toBeCloseTo(0.5, 12);
    expect(tipEvidenceFactor(0)).toBe(0);
    expect(tipEvidenceFactor(-0.4)).toBe(0);
  });
});

describe('checkCathodeTips on rendered frames', () => {
  // Clean enough that the truth is unambiguous: the check must keep every true cathode and
  // drop one moved halfway toward its anodes' tips, in every orientation.
  for (const orientation of ORIENTATIONS) {
    it(`${orientation}: true cathodes keep their confidence, a cathode put in the gap becomes POLE_MISSING`, () => {
      const f = renderFrame({ seed: 41, defectRate: 0, width: 1000, height: 1000, depth: 16, orientation, blurSigma: 1, snr: 100, rotationDeg: 0 });
      const k = DEFAULT_RECIPE.keypoints.length;
      const x = Float64Array.from({ length: k }, (_, i) => f.keypoints[3 * i]!);
      const y = Float64Array.from({ length: k }, (_, i) => f.keypoints[3 * i + 1]!);
      const conf = new Float64Array(k).fill(0.95);
      const min = DEFAULT_RECIPE.minConfidence;
      const kept = checkCathodeTips(f.image, orientation, { x, y, conf }, DEFAULT_RECIPE.sheets, min);
      expect(Array.from(kept)).toEqual(Array.from(conf));

      // C7 (index 15) moved halfway from its tip toward the nearer of its anodes' tips.
      const { width, height } = f.image;
      const c = (i: number) => toCanonical(x[i]!, y[i]!, width, height, orientation);
      const [cx, cy] = c(15);
      const ahead = Math.min(c(14)[0], c(16)[0]) - cx;
      [x[15], y[15]] = fromCanonical(cx + ahead / 2, cy, width, height, orientation);
      const checked = checkCathodeTips(f.image, orientation, { x, y, conf }, DEFAULT_RECIPE.sheets, min);
      expect(checked[15]).toBeLessThan(min);
      checked.forEach((v, i) => i !== 15 && expect(v).toBe(0.95));
      const canonical = Array.from(checked, (cf, i) => ({ x: c(i)[0], conf: cf }));
      expect(judge(canonical, DEFAULT_RECIPE).reasons).toContain('POLE_MISSING');
    });
  }
});
