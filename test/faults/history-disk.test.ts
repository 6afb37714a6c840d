// The history's disk fills up in the middle of a run, or is read-only when the daemon starts:
// the daemon says "degraded" (status topic, log), takes no more frames (they stay in the hot
// folder), and recovers on its own when space returns; nothing judged is lost or judged twice.
// A real tmpfs and a read-only bind mount: that needs root with CAP_SYS_ADMIN, else skipped.
import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Mosquitto, mosquittoAvailable } from '../helpers/mosquitto.ts';
import { mountable } from '../helpers/mounts.ts';
import {
  dropFrame, framePngs, historyRows, outboxDepth, readHistory, startDaemon, stopDaemon, Subscriber, tail, tempDir, until, writeConfig,
  type DaemonProcess,
} from './harness.ts';

if (!mountable) console.warn('history-disk faults skipped: mounting a tmpfs needs root with CAP_SYS_ADMIN');

/** Files waiting at the top of the hot folder (not yet taken). */
function waiting(hot: string): string[] {
  return fs.readdirSync(hot).filter((n) => !['processing', 'done', 'failed'].includes(n) && !n.startsWith('.'));
}

/** Writes zeros until the file system refuses (ENOSPC); returns the bytes written. */
function fill(file: string): number {
  const fd = fs.openSync(file, 'w');
  let bytes = 0;
  for (const size of [64 * 1024, 512]) {
    try {
      for (;;) bytes += fs.writeSync(fd, Buffer.alloc(size));
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOSPC') throw e;
    }
  }
  fs.closeSync(fd);
  return bytes;
}

describe.skipIf(!mountable || !mosquittoAvailable())('history on a full or read-only disk, at the daemon level', () => {
  let broker: Mosquitto;
  const mounts: string[] = [];
  const dirs: string[] = [];
  const daemons: DaemonProcess[] = [];

  beforeAll(async () => {
    broker = await Mosquitto.start();
  });
  afterAll(async () => {
    for (const d of daemons) await stopDaemon(d);
    for (const m of mounts.reverse()) spawnSync('umount', [m]);
    await broker?.close();
    for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
  });

  it('a disk that fills up mid-run: degraded, frames wait in the hot folder, recovery when space returns', async () => {
    const dir = tempDir('full');
    dirs.push(dir);
    const cfg = writeConfig(dir, broker.url);
    const varDir = path.dirname(cfg.db);
    fs.mkdirSync(varDir, { recursive: true });
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=16m,mode=0700', 'tmpfs', varDir]);
    mounts.push(varDir);
    const pngs = await framePngs(2);
    const sub = await Subscriber.connect(broker.url, cfg.root);
    const d = startDaemon(cfg.file);
    daemons.push(d);
    await until('online', () => sub.lastState() === 'online', 60_000, tail(d));
    for (let i = 0; i < 5; i++) dropFrame(cfg.hot, `a-${i}.png`, pngs[i % 2]!);
    await until('5 rows', () => historyRows(cfg.db).length === 5, 60_000, tail(d));

    const filler = path.join(varDir, 'filler');
    fill(filler);
    const names = Array.from({ length: 40 }, (_, i) => `b-${String(i).padStart(2, '0')}.png`);
    for (const [i, n] of names.entries()) dropFrame(cfg.hot, n, pngs[i % 2]!);
    await until('status degraded', () => sub.statuses.some((s) => s.state === 'degraded'), 60_000, tail(d));
    expect(d.out.some((l) => /^<3>.*degraded/.test(l))).toBe(true);
    // Backpressure: the daemon holds at most its queue and in-flight frames; the rest stay put.
    await new Promise((r) => setTimeout(r, 1500));
    const stayed = waiting(cfg.hot).length;
    const rowsWhileFull = historyRows(cfg.db).length;
    expect(stayed).toBeGreaterThan(0);
    await new Promise((r) => setTimeout(r, 1500));
    expect(waiting(cfg.hot).length).toBe(stayed);
    expect(historyRows(cfg.db).length).toBe(rowsWhileFull);

    fs.rmSync(filler);
    await until('45 rows after space returned', () => historyRows(cfg.db).length === 45, 120_000, tail(d));
    await until('status online again', () => sub.lastState() === 'online', 30_000, tail(d));
    await until('45 results published', () => sub.ids().size === 45, 60_000, tail(d));
    await until('an empty outbox', () => outboxDepth(cfg.db) === 0, 30_000, tail(d));
    expect(waiting(cfg.hot)).toEqual([]);
    expect((await stopDaemon(d)).code).toBe(0);
    const rows = historyRows(cfg.db);
    expect(rows.map((r) => r.frame).sort()).toEqual([...Array.from({ length: 5 }, (_, i) => `a-${i}.png`), ...names].sort());
    expect(rows.map((r) => r.seq)).toEqual(rows.map((_, i) => i + 1));
    expect(readHistory(cfg.db, (db) => db.pragma('integrity_check', { simple: true }))).toBe('ok');
    console.log(`full disk: ${rowsWhileFull - 5} frame(s) recorded after the fill, ${stayed} waited in the hot folder; all 45 recorded and published after recovery`);
    await sub.close();
  }, 300_000);

  it('a read-only disk at start: degraded, frames untouched, judged once the disk is writable', async () => {
    const dir = tempDir('ro');
    dirs.push(dir);
    const cfg = writeConfig(dir, broker.url);
    const varDir = path.dirname(cfg.db);
    fs.mkdirSync(varDir, { recursive: true });
    fs.mkdirSync(cfg.hot, { recursive: true });
    const pngs = await framePngs(1);
    const names = ['r-0.png', 'r-1.png', 'r-2.png'];
    for (const n of names) dropFrame(cfg.hot, n, pngs[0]!);
    execFileSync('mount', ['--bind', '-o', 'ro', varDir, varDir]);
    mounts.push(varDir);
    const sub = await Subscriber.connect(broker.url, cfg.root);
    const d = startDaemon(cfg.file);
    daemons.push(d);
    await until('a degraded log line', () => d.out.some((l) => /^<3>.*degraded.*(EROFS|READONLY|CANTOPEN)/.test(l)), 60_000, tail(d));
    await new Promise((r) => setTimeout(r, 1000));
    expect(waiting(cfg.hot).sort()).toEqual(names);
    expect(d.child.exitCode).toBeNull();

    execFileSync('umount', [varDir]);
    mounts.pop();
    await until('3 rows', () => historyRows(cfg.db).length === 3, 60_000, tail(d));
    await until('3 results published', () => sub.ids().size === 3, 30_000, tail(d));
    expect(waiting(cfg.hot)).toEqual([]);
    expect((await stopDaemon(d)).code).toBe(0);
    await sub.close();
  }, 300_000);
});
