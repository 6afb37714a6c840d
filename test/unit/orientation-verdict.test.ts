import { describe, expect, it } from 'vitest';
import { boxFromCanonical, boxToCanonical, canonicalSize, fromCanonical, toCanonical } from '../../src/frame/orientation.ts';
import { DEFAULT_RECIPE } from '../../src/inspect/recipe.ts';
import { judge } from '../../src/inspect/verdict.ts';
import { ORIENTATIONS, type Box } from '../../src/types.ts';

describe('orientation', () => {
  it('maps the tip direction of each orientation to +x', () => {
    const W = 40, H = 30;
    // A step along the tip direction in the frame as delivered must become +x in canonical.
    const step: Record<string, [number, number]> = {
      'tips-right': [1, 0], 'tips-left': [-1, 0], 'tips-up': [0, -1], 'tips-down': [0, 1],
    };
    for (const o of ORIENTATIONS) {
      const [x0, y0] = toCanonical(10, 12, W, H, o);
      const [x1, y1] = toCanonical(10 + step[o]![0], 12 + step[o]![1], W, H, o);
      expect([x1 - x0, y1 - y0]).toEqual([1, 0]);
    }
  });

  it('keeps pixel centres inside the canonical frame and round-trips', () => {
    const W = 7, H = 5;
    for (const o of ORIENTATIONS) {
      const [cw, ch] = canonicalSize(W, H, o);
      for (const [x, y] of [[0, 0], [W - 1, H - 1], [3, 1], [0, H - 1]] as const) {
        const [xc, yc] = toCanonical(x, y, W, H, o);
        expect(xc).toBeGreaterThanOrEqual(0);
        expect(yc).toBeGreaterThanOrEqual(0);
        expect(xc).toBeLessThanOrEqual(cw - 1);
        expect(yc).toBeLessThanOrEqual(ch - 1);
        expect(fromCanonical(xc, yc, W, H, o)).toEqual([x, y]);
      }
    }
  });

  it('maps boxes as continuous regions and back', () => {
    const W = 100, H = 60;
    const box: Box = [10, 5, 20, 30];
    expect(boxToCanonical(box, W, H, 'tips-left')).toEqual([69, 5, 20, 30]);
    expect(boxToCanonical(box, W, H, 'tips-up')).toEqual([24, 10, 30, 20]);
    for (const o of ORIENTATIONS) {
      expect(boxFromCanonical(boxToCanonical(box, W, H, o), W, H, o)).toEqual(box);
    }
  });
});

describe('verdict', () => {
  const pitch = DEFAULT_RECIPE.pixelPitchMm;
  function poles(overhangPx: number): { x: number; conf: number }[] {
    return DEFAULT_RECIPE.sheets.map((s) => ({ x: s === 'A' ? 500 : 500 - overhangPx, conf: 0.9 }));
  }

  it('passes overhangs inside the spec and reports them in mm', () => {
    const j = judge(poles(50), DEFAULT_RECIPE);
    expect(j.verdict).toBe('PASS');
    expect(j.overhangMm).toHaveLength(15);
    for (const v of j.overhangMm) expect(v).toBeCloseTo(50 * pitch, 9);
  });

  it('takes the smaller of the two neighbouring anodes', () => {
    const p = poles(50);
    p[2]!.x = 500 - 40; // A1 shorter: C0 and C1 overhang = 10 px = 0.2 mm
    const j = judge(p, DEFAULT_RECIPE);
    expect(j.overhangMm[0]).toBeCloseTo(0.2, 9);
    expect(j.overhangMm[1]).toBeCloseTo(0.2, 9);
    expect(j.overhangMm[2]).toBeCloseTo(1.0, 9);
    expect(j).toMatchObject({ verdict: 'FAIL', reasons: ['OVERHANG_LOW'] });
  });

  it('fails high, negative and missing poles', () => {
    expect(judge(poles(81), DEFAULT_RECIPE).reasons).toEqual(['OVERHANG_HIGH']);
    expect(judge(poles(-5), DEFAULT_RECIPE).reasons).toEqual(['OVERHANG_LOW']);
    const p = poles(50);
    p[5]!.conf = 0.1;
    const j = judge(p, DEFAULT_RECIPE);
    expect(j.reasons).toEqual(['POLE_MISSING']);
    expect(j.overhangMm[2]).toBeNull();
    expect(j.overhangMm[1]).toBeCloseTo(1.0, 9);
  });

  it('judges the limits inclusively', () => {
    expect(judge(poles(20), DEFAULT_RECIPE).verdict).toBe('PASS'); // 0.40 mm
    expect(judge(poles(80), DEFAULT_RECIPE).verdict).toBe('PASS'); // 1.60 mm
  });
});
