// The simulated detector: frames at a fixed rate from a worker-rendered set; a frame not taken
// in time is dropped and counted, like a real detector's.
import { describe, expect, it } from 'vitest';
import { DEFAULT_RECIPE } from '../src/inspect/recipe.ts';
import { createLogger } from '../src/log.ts';
import { Simulator } from '../src/sources/simulator.ts';

const log = createLogger('err', () => undefined);

describe('simulator', () => {
  it('delivers rendered frames at its rate, repeats the set with new names and cell ids, and counts drops', async () => {
    const sim = new Simulator({ rate: 20, defectRate: 0.5, seed: 5, size: 1000, frames: 2, orientation: 'tips-left', recipe: DEFAULT_RECIPE }, log);
    await sim.open();
    try {
      const a = (await sim.next())!;
      const b = (await sim.next())!;
      expect([a.frame, b.frame]).toEqual(['sim-0.png', 'sim-1.png']);
      const img = (a.input as { image: { width: number; height: number } }).image;
      expect([img.width, img.height]).toEqual([1000, 1000]);
      // Rendering the set is warm-up (nothing dropped); then 20 frames/s: four frames 50 ms apart.
      const t0 = performance.now();
      const next4 = [];
      for (let i = 0; i < 4; i++) next4.push((await sim.next())!);
      const dt = performance.now() - t0;
      expect(next4.map((f) => f.frame)).toEqual(['sim-2.png', 'sim-3.png', 'sim-4.png', 'sim-5.png']);
      expect(sim.counters().dropped).toBe(0);
      expect(dt).toBeGreaterThanOrEqual(3 * 50 - 10);
      // The repeat of frame 0 of the set is the same picture under its own cell id.
      const repeat = next4[0]!;
      expect((repeat.input as { image: unknown }).image).toBe((a.input as { image: unknown }).image);
      expect(repeat.cellId).not.toBe(a.cellId);
      expect(repeat.cellId!.startsWith(a.cellId!)).toBe(true);
      // Nobody takes frames for 500 ms: about 10 ticks pass and are dropped.
      const before = sim.counters().dropped!;
      await new Promise((r) => setTimeout(r, 500));
      await sim.next();
      const dropped = sim.counters().dropped! - before;
      expect(dropped).toBeGreaterThanOrEqual(7);
      expect(dropped).toBeLessThanOrEqual(12);
      expect(sim.counters().produced).toBe(7);
      // Verdicts are scored against the renderer's expectation (SPEC's overkill and escape).
      const expected = (await import('../src/synth/frame.ts')).renderFrame({ seed: 5, defectRate: 0.5, width: 1000, height: 1000, orientation: 'tips-left', recipe: DEFAULT_RECIPE }).expectedVerdict;
      await a.ack('PASS');
      await a.ack('ERROR');
      const c = sim.counters();
      expect(c.judged).toBe(2);
      expect(expected === 'PASS' ? [c.expectedPass, c.overkill, c.escape] : [c.expectedFail, c.escape, c.overkill]).toEqual([2, 1, 0]);
    } finally {
      sim.stop();
    }
    expect(await sim.next()).toBeNull();
  });

  it('is idle while it waits for its next tick, and stop() ends a pending next()', async () => {
    const sim = new Simulator({ rate: 0.5, defectRate: 0, seed: 9, size: 1000, frames: 1, orientation: 'tips-right', recipe: DEFAULT_RECIPE }, log);
    await sim.open();
    await sim.next();
    const pending = sim.next();
    await new Promise((r) => setTimeout(r, 100));
    expect(sim.idle).toBe(true);
    sim.stop();
    expect(await pending).toBeNull();
  });
});
