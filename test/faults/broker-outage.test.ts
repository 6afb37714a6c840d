// The broker stops in the middle of a run (30 s in `npm run test:faults`, 4 s in CI) while frames
// keep arriving, then comes back: every result recorded in the history reaches the subscriber,
// none is lost, and a result seen twice is the same message under the same id.
import fs from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Result } from '../../src/types.ts';
import { Mosquitto, mosquittoAvailable } from '../helpers/mosquitto.ts';
import {
  dropFrame, framePngs, historyRows, LONG, outboxDepth, startDaemon, stopDaemon, Subscriber, tail, tempDir, until, writeConfig,
  type DaemonProcess,
} from './harness.ts';

const OUTAGE_MS = LONG ? 30_000 : 4_000;
const FRAME_EVERY_MS = 100;
const BEFORE = 15;
const AFTER = 15;

describe.skipIf(!mosquittoAvailable())('broker outage in the middle of a run', () => {
  let broker: Mosquitto;
  let sub: Subscriber;
  let daemon: DaemonProcess;
  let dir: string;

  beforeAll(async () => {
    broker = await Mosquitto.start();
    dir = tempDir('outage');
  });
  afterAll(async () => {
    if (daemon) await stopDaemon(daemon);
    await sub?.close();
    await broker?.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it(`delivers every result after a ${OUTAGE_MS / 1000} s outage, repeats only under the same id`, async () => {
    const cfg = writeConfig(dir, broker.url);
    const pngs = await framePngs(3);
    sub = await Subscriber.connect(broker.url, cfg.root);
    daemon = startDaemon(cfg.file);
    const ctx = () => tail(daemon)() + '\n--- broker log ---\n' + broker.log().split('\n').slice(-10).join('\n');
    await until('online', () => sub.lastState() === 'online', 60_000, ctx);

    let n = 0;
    const drop = () => dropFrame(cfg.hot, `cell-${String(n).padStart(5, '0')}.png`, pngs[n++ % pngs.length]!);
    const dropFor = async (ms: number) => {
      for (const end = Date.now() + ms; Date.now() < end; ) {
        drop();
        await new Promise((r) => setTimeout(r, FRAME_EVERY_MS));
      }
    };

    for (let i = 0; i < BEFORE; i++) drop();
    await until(`${BEFORE} results before the outage`, () => sub.ids().size >= BEFORE, 60_000, ctx);

    await broker.stop();
    const droppedBefore = n;
    await dropFor(OUTAGE_MS);
    const duringOutage = n - droppedBefore;
    // The daemon kept judging and recording while the broker was away.
    await until('frames judged during the outage', () => historyRows(cfg.db).length >= droppedBefore + duringOutage / 2, 60_000, ctx);
    const seenBeforeReturn = sub.ids().size;
    await broker.resume();
    for (let i = 0; i < AFTER; i++) drop();

    const total = n;
    await until(`${total} rows in the history`, () => historyRows(cfg.db).length === total, 120_000, ctx);
    await until(`${total} distinct results at the subscriber`, () => sub.ids().size === total, 120_000, () => `${sub.ids().size} of ${total}\n${ctx()}`);

    const rows = historyRows(cfg.db);
    // Every frame judged once, seqs contiguous, and exactly the history's ids were delivered.
    expect(new Set(rows.map((r) => r.frame)).size).toBe(total);
    expect(rows.map((r) => r.seq)).toEqual(rows.map((_, i) => rows[0]!.seq + i));
    expect([...sub.ids()].sort()).toEqual(rows.map((r) => r.id).sort());
    // A repeat (at-least-once) carries the same id and the same content.
    const byId = new Map<string, Result>();
    for (const r of sub.results) {
      const first = byId.get(r.id);
      if (first) expect(r).toEqual(first);
      else byId.set(r.id, r);
    }
    const byFrame = new Map<string, Set<string>>();
    for (const r of sub.results) byFrame.set(r.frame, (byFrame.get(r.frame) ?? new Set()).add(r.id));
    for (const [frame, ids] of byFrame) expect(ids.size, frame).toBe(1);
    // Nothing waits in the outbox once the broker has acknowledged everything.
    await until('an empty outbox', () => historyRows(cfg.db).length === total && outboxDepth(cfg.db) === 0, 30_000, ctx);
    console.log(
      `broker outage ${OUTAGE_MS / 1000} s: ${total} frames (${duringOutage} during the outage, ${total - seenBeforeReturn} delivered after it), ` +
        `${sub.results.length - total} repeat(s), all under their first id`,
    );
    expect(total - seenBeforeReturn).toBeGreaterThanOrEqual(duringOutage);
  });
});

