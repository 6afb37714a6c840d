// The daemon is SIGKILLed in the middle of a hot folder (500 frames in `npm run test:faults`, 60
// in CI; killed twice in the long variant) and started again: every frame is judged exactly once
// in the history, every result is published at least once, nothing stays in processing/, and
// SQLite's integrity check passes.
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Mosquitto, mosquittoAvailable } from '../helpers/mosquitto.ts';
import {
  dropFrame, framePngs, historyRows, LONG, outboxDepth, readHistory, startDaemon, stopDaemon, Subscriber, tail, tempDir, until,
  writeConfig, type DaemonProcess,
} from './harness.ts';

const FRAMES = LONG ? 500 : 60;
const KILLS = LONG ? 2 : 1;

describe.skipIf(!mosquittoAvailable())('SIGKILL in the middle of a hot folder', () => {
  let broker: Mosquitto;
  let sub: Subscriber;
  let daemon: DaemonProcess | undefined;
  let dir: string;

  beforeAll(async () => {
    broker = await Mosquitto.start();
    dir = tempDir('crash');
  });
  afterAll(async () => {
    if (daemon) await stopDaemon(daemon);
    await sub?.close();
    await broker?.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it(`judges each of ${FRAMES} frames exactly once across ${KILLS} SIGKILL(s) and restarts`, async () => {
    const cfg = writeConfig(dir, broker.url);
    const pngs = await framePngs(4);
    sub = await Subscriber.connect(broker.url, cfg.root);
    fs.mkdirSync(cfg.hot, { recursive: true });
    // The whole folder is there before the first start, as after a line stop.
    const names = Array.from({ length: FRAMES }, (_, i) => `frame-${String(i).padStart(4, '0')}.png`);
    names.forEach((n, i) => dropFrame(cfg.hot, n, pngs[i % pngs.length]!));

    const killedAt: number[] = [];
    const leftInProcessing: number[] = [];
    for (let k = 0; k < KILLS; k++) {
      daemon = startDaemon(cfg.file);
      const target = Math.round((FRAMES * (k + 1)) / (KILLS + 1));
      await until(`${target} rows before kill ${k + 1}`, () => historyRows(cfg.db).length >= target, 180_000, tail(daemon));
      daemon.child.kill('SIGKILL');
      expect((await daemon.exited).signal).toBe('SIGKILL');
      killedAt.push(historyRows(cfg.db).length);
      leftInProcessing.push(fs.readdirSync(path.join(cfg.hot, 'processing')).length);
    }

    daemon = startDaemon(cfg.file);
    const d = daemon;
    await until(`${FRAMES} rows`, () => historyRows(cfg.db).length >= FRAMES, 300_000, tail(d));
    await until('an empty hot folder', () => pending(cfg.hot) === 0, 30_000, () => `${pending(cfg.hot)} left\n${tail(d)()}`);
    await until(`${FRAMES} results at the subscriber`, () => sub.ids().size >= FRAMES, 60_000, () => `${sub.ids().size}\n${tail(d)()}`);
    await until('an empty outbox', () => outboxDepth(cfg.db) === 0, 30_000, tail(d));
    expect((await stopDaemon(d)).code).toBe(0);
    daemon = undefined;
    const skipped = d.out.filter((l) => l.includes('already recorded')).length;

    const rows = historyRows(cfg.db);
    expect(rows).toHaveLength(FRAMES);
    expect(rows.map((r) => r.frame).sort()).toEqual(names);
    expect(rows.map((r) => r.seq)).toEqual(rows.map((_, i) => i + 1));
    const published = sub.ids();
    for (const r of rows) expect(published.has(r.id), r.id).toBe(true);
    expect(published.size).toBe(FRAMES);
    // Repeats after a crash re-send the recorded message, never a second judgement.
    for (const frame of names) expect(new Set(sub.results.filter((r) => r.frame === frame).map((r) => r.id)).size, frame).toBe(1);
    expect(fs.readdirSync(path.join(cfg.hot, 'processing'))).toEqual([]);
    // Judged frames leave for done/ (PASS, FAIL) or failed/ (ERROR), each exactly once.
    const moved = [...fs.readdirSync(path.join(cfg.hot, 'done')), ...fs.readdirSync(path.join(cfg.hot, 'failed'))];
    expect(moved.sort()).toEqual(names);
    expect(readHistory(cfg.db, (db) => db.pragma('integrity_check', { simple: true }))).toBe('ok');
    console.log(
      `crash/restart: ${FRAMES} frames, killed at ${killedAt.join(', ')} rows with ${leftInProcessing.join(', ')} file(s) in processing/; ` +
        `${skipped} recorded leftover(s) recognised, ${sub.results.length - FRAMES} repeat message(s); integrity ok`,
    );
  });
});

describe.skipIf(!mosquittoAvailable())('a frame recorded but still in processing/ at the crash', () => {
  it('is recognised at the restart and not judged twice', async () => {
    const broker = await Mosquitto.start();
    const dir = tempDir('crash-moved');
    let d: DaemonProcess | undefined;
    try {
      const cfg = writeConfig(dir, broker.url);
      const pngs = await framePngs(2);
      const sub = await Subscriber.connect(broker.url, cfg.root);
      d = startDaemon(cfg.file);
      await until('online', () => sub.lastState() === 'online', 60_000, tail(d));
      // done/ and failed/ turn into files: results are recorded, but their frames cannot leave processing/.
      const outs = ['done', 'failed'].map((n) => path.join(cfg.hot, n));
      for (const o of outs) {
        fs.renameSync(o, `${o}.away`);
        fs.writeFileSync(o, 'not a folder');
      }
      const names = Array.from({ length: 8 }, (_, i) => `stuck-${i}.png`);
      names.forEach((n, i) => dropFrame(cfg.hot, n, pngs[i % 2]!));
      await until('8 rows', () => historyRows(cfg.db).length === 8, 60_000, tail(d));
      await until('8 files stuck in processing/', () => fs.readdirSync(path.join(cfg.hot, 'processing')).length === 8, 10_000, tail(d));
      d.child.kill('SIGKILL');
      await d.exited;
      for (const o of outs) {
        fs.rmSync(o);
        fs.renameSync(`${o}.away`, o);
      }

      const before = historyRows(cfg.db);
      d = startDaemon(cfg.file);
      const d2 = d;
      await until('processing/ emptied', () => fs.readdirSync(path.join(cfg.hot, 'processing')).length === 0, 60_000, tail(d2));
      expect((await stopDaemon(d2)).code).toBe(0);
      d = undefined;
      expect(historyRows(cfg.db)).toEqual(before);
      expect(outs.flatMap((o) => fs.readdirSync(o)).sort()).toEqual(names.sort());
      expect(d2.out.filter((l) => l.includes('already recorded')).length).toBe(8);
      await sub.close();
    } finally {
      if (d) await stopDaemon(d);
      await broker.close();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

/** Frame files still in the hot folder or in processing/. */
function pending(hot: string): number {
  const top = fs.readdirSync(hot).filter((n) => !['processing', 'done', 'failed'].includes(n));
  return top.length + fs.readdirSync(path.join(hot, 'processing')).length;
}
