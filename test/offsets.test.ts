import { describe, expect, it } from 'vitest';
import { applyPoleOffsets, halfPitch, type PoleOffsets } from '../src/vision/offsets.ts';

/** Canonical poles of a straight stack: tips at x = 500, sheets `h` px apart from y = 100. */
function stack(k: number, h: number): { xc: Float64Array; yc: Float64Array; conf: Float64Array } {
  return {
    xc: Float64Array.from({ length: k }, (_, i) => (i % 2 ? 470 : 500)),
    yc: Float64Array.from({ length: k }, (_, i) => 100 + i * h),
    conf: new Float64Array(k).fill(0.9),
  };
}

describe('halfPitch', () => {
  it('is the median spacing of neighbouring confident poles', () => {
    const s = stack(7, 9);
    s.yc[3] = s.yc[3]! + 4; // one pole off: the median ignores it
    expect(halfPitch(s.yc, s.conf, 0.5)).toBe(9);
  });

  it('skips pairs with an unconfident pole and gives null below 3 pairs', () => {
    const s = stack(7, 12);
    s.conf[1] = 0.1;
    s.conf[4] = 0.1;
    // Confident neighbour pairs left: (2,3) and (5,6) only.
    expect(halfPitch(s.yc, s.conf, 0.5)).toBeNull();
    s.conf[4] = 0.9;
    expect(halfPitch(s.yc, s.conf, 0.5)).toBe(12);
  });
});

describe('applyPoleOffsets', () => {
  const offsets: PoleOffsets = [[0, 0.1], [0.05, 0.15], [0, 0], [0, 0], [-0.05, -0.15], [0, -0.1]];

  it('moves each pole by its offset times the frame half pitch, so the correction scales with the stack', () => {
    for (const h of [8, 16]) {
      const s = stack(6, h);
      const before = { xc: s.xc.slice(), yc: s.yc.slice() };
      applyPoleOffsets(s.xc, s.yc, s.conf, offsets, 0.5);
      offsets.forEach(([dx, dy], i) => {
        expect(s.xc[i]! - before.xc[i]!).toBeCloseTo(dx * h, 9);
        expect(s.yc[i]! - before.yc[i]!).toBeCloseTo(dy * h, 9);
      });
    }
  });

  it('leaves the poles alone when the half pitch cannot be measured, and refuses a wrong count', () => {
    const s = stack(6, 10);
    s.conf.fill(0.2);
    const y = s.yc.slice();
    applyPoleOffsets(s.xc, s.yc, s.conf, offsets, 0.5);
    expect(Array.from(s.yc)).toEqual(Array.from(y));
    expect(() => applyPoleOffsets(s.xc, s.yc, s.conf, offsets.slice(1), 0.5)).toThrow(RangeError);
  });
});
