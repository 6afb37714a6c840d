// The pipeline's analysis slots: at most N holders at once, waiters served in the order they came.
import { describe, expect, it } from 'vitest';
import { Slots } from '../src/inspect/slots.ts';

const tick = () => new Promise((r) => setImmediate(r));

describe('Slots', () => {
  it('lets N in at once and the rest in the order they asked', async () => {
    const slots = new Slots(2);
    const entered: number[] = [];
    const asks = [0, 1, 2, 3, 4].map((i) => slots.take().then(() => entered.push(i)));
    await tick();
    expect(entered).toEqual([0, 1]);
    slots.give();
    await tick();
    expect(entered).toEqual([0, 1, 2]);
    slots.give();
    slots.give();
    await Promise.all(asks);
    expect(entered).toEqual([0, 1, 2, 3, 4]);
  });

  it('keeps a slot given back with nobody waiting for the next taker', async () => {
    const slots = new Slots(1);
    await slots.take();
    slots.give();
    let inside = false;
    void slots.take().then(() => (inside = true));
    await tick();
    expect(inside).toBe(true);
    let second = false;
    void slots.take().then(() => (second = true));
    await tick();
    expect(second).toBe(false);
  });

  it('never limits with Infinity (the default outside the daemon)', async () => {
    const slots = new Slots(Number.POSITIVE_INFINITY);
    await Promise.all(Array.from({ length: 100 }, () => slots.take()));
  });
});
