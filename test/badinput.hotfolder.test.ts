// Bad input through the daemon's hot folder (the daemon as a child process): the bad-frame corpus
// as files, odd names, symlinks pointing out of the folder, a directory and a named pipe posing
// as frames, a file written slowly, and one that never stops growing (long variant). Each bad
// file gives exactly one ERROR result with the right reason and lands in failed/; nothing
// outside the folder is read or touched; the good frames around them are judged normally.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Result } from '../src/types.ts';
import { badFrames } from './helpers/bad-frames.ts';
import { Mosquitto, mosquittoAvailable } from './helpers/mosquitto.ts';
import {
  dropFrame, framePngs, historyRows, LONG, startDaemon, stopDaemon, Subscriber, tail, tempDir, until, writeConfig, type DaemonProcess,
} from './faults/harness.ts';

const KNOWN_GAPS = new Set(['noise.png']); // see test/badinput.test.ts

describe.skipIf(!mosquittoAvailable())('bad input through the hot folder', () => {
  let broker: Mosquitto;
  let sub: Subscriber;
  let daemon: DaemonProcess;
  let dir: string;
  let cfg: ReturnType<typeof writeConfig>;
  let good: Buffer;
  /** The daemon's result for `good` under a plain name: the same bytes must give the same judgement. */
  let reference: Result;
  const same = (r: Result) => ({ verdict: r.verdict, reasons: r.reasons, poles: r.poles, roi: r.roi });
  const outside = () => path.join(dir, 'outside');

  const resultFor = (name: string): Result[] => sub.results.filter((r) => r.frame === name);
  const judged = async (names: string[]) =>
    until(`results for ${names.length} file(s)`, () => names.every((n) => resultFor(n).length > 0), 60_000, () => {
      const missing = names.filter((n) => resultFor(n).length === 0);
      return `missing: ${JSON.stringify(missing)}\n${tail(daemon)()}`;
    });

  beforeAll(async () => {
    broker = await Mosquitto.start();
    dir = tempDir('badhot');
    cfg = writeConfig(dir, broker.url, { source: { hotfolder: { stableMs: 300 } } });
    [good] = await framePngs(1);
    fs.mkdirSync(outside());
    sub = await Subscriber.connect(broker.url, cfg.root);
    daemon = startDaemon(cfg.file);
    await until('online', () => sub.lastState() === 'online', 60_000, tail(daemon));
    dropFrame(cfg.hot, 'reference.png', good);
    await judged(['reference.png']);
    reference = resultFor('reference.png')[0]!;
  });
  afterAll(async () => {
    if (daemon) await stopDaemon(daemon);
    await sub?.close();
    await broker?.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('the corpus as files: one ERROR each with its reason, moved to failed/, the good frames after them judged', async () => {
    const corpus = await badFrames();
    const names: string[] = [];
    for (const [i, f] of corpus.entries()) {
      dropFrame(cfg.hot, f.name, f.bytes);
      dropFrame(cfg.hot, `good-${i}.png`, good);
      names.push(f.name, `good-${i}.png`);
    }
    await judged(names);
    for (const [i, f] of corpus.entries()) {
      const rs = resultFor(f.name);
      expect(new Set(rs.map((r) => r.id)).size, f.name).toBe(1);
      if (!KNOWN_GAPS.has(f.name)) expect([rs[0]!.verdict, rs[0]!.reasons], `${f.name}: ${rs[0]!.error}`).toEqual(['ERROR', [f.judge]]);
      expect(same(resultFor(`good-${i}.png`)[0]!), `the good frame after ${f.name}`).toEqual(same(reference));
    }
    const failed = fs.readdirSync(path.join(cfg.hot, 'failed'));
    for (const f of corpus) if (!KNOWN_GAPS.has(f.name)) expect(failed).toContain(f.name);
    expect(daemon.child.exitCode).toBeNull();
  });

  it('odd names are judged under their exact names and never escape the folder', async () => {
    const odd = [
      'with space.png',
      'ünïcödé-セル.png',
      "quote'and\"double.png",
      '-starts-with-dash.png',
      'semi;colon&amp$(echo x).png',
      'new\nline.png',
      'UPPER.PNG',
      'a..b..png',
      `${'x'.repeat(251)}.png`, // 255 bytes, the longest name ext4 allows
      'back\\slash.png',
    ];
    for (const n of odd) dropFrame(cfg.hot, n, good);
    // Dot-names are the writers' temp names (write, then rename): waited for, never judged.
    fs.writeFileSync(path.join(cfg.hot, '..png'), good);
    await judged(odd);
    expect(resultFor('..png')).toEqual([]);
    expect(fs.existsSync(path.join(cfg.hot, '..png'))).toBe(true);
    for (const n of odd) {
      const rs = resultFor(n);
      expect(same(rs[0]!), n).toEqual(same(reference));
      expect(new Set(rs.map((r) => r.id)).size).toBe(1);
    }
    expect(fs.readdirSync(path.join(cfg.hot, 'done'))).toEqual(expect.arrayContaining(odd));
    // Nothing was written next to the hot folder (a name with '..' or a slash-like byte would have).
    expect(fs.readdirSync(dir).sort()).toEqual(['hot', 'outside', 'var', 'xpole.yaml']);
  });

  it('symlinks out of the folder, a directory and a named pipe: BAD_FRAME, targets untouched, no hang', async () => {
    const secret = path.join(outside(), 'secret.png');
    fs.writeFileSync(secret, good);
    const before = fs.statSync(secret);
    fs.symlinkSync(secret, path.join(cfg.hot, 'link-to-file.png'));
    fs.symlinkSync('/etc/passwd', path.join(cfg.hot, 'link-to-passwd.png'));
    fs.symlinkSync(outside(), path.join(cfg.hot, 'link-to-dir.png'));
    fs.symlinkSync(path.join(outside(), 'dangling'), path.join(cfg.hot, 'dangling.png'));
    fs.mkdirSync(path.join(cfg.hot, 'a-directory.png'));
    execFileSync('mkfifo', [path.join(cfg.hot, 'a-pipe.png')]);
    const names = ['link-to-file.png', 'link-to-passwd.png', 'link-to-dir.png', 'dangling.png', 'a-directory.png', 'a-pipe.png'];
    dropFrame(cfg.hot, 'after-links.png', good);
    await judged([...names, 'after-links.png']);
    for (const n of names) {
      const r = resultFor(n)[0]!;
      expect([r.verdict, r.reasons], `${n}: ${r.error}`).toEqual(['ERROR', ['BAD_FRAME']]);
    }
    expect(same(resultFor('after-links.png')[0]!)).toEqual(same(reference));
    // The target outside was neither read into a result nor moved.
    expect(fs.statSync(secret).ino).toBe(before.ino);
    expect(fs.readdirSync(outside())).toEqual(['secret.png']);
    expect(fs.readFileSync('/etc/passwd').length).toBeGreaterThan(0);
    // The links themselves went to failed/, still links.
    expect(fs.lstatSync(path.join(cfg.hot, 'failed', 'link-to-file.png')).isSymbolicLink()).toBe(true);
  });

  it('a file written slowly (40 chunks over ~2 s) is read once it is complete, never half', async () => {
    const name = 'slow-writer.png';
    const fd = fs.openSync(path.join(cfg.hot, name), 'w');
    const chunk = Math.ceil(good.length / 40);
    for (let o = 0; o < good.length; o += chunk) {
      fs.writeSync(fd, good.subarray(o, o + chunk));
      await new Promise((r) => setTimeout(r, 50));
    }
    fs.closeSync(fd);
    await judged([name]);
    const rs = resultFor(name);
    expect(rs).toHaveLength(1);
    expect(same(rs[0]!), rs[0]!.error).toEqual(same(reference));
  });

  it.skipIf(!LONG)('a file that never stops growing is refused after 60 s as BAD_FRAME, the folder keeps flowing', async () => {
    const name = 'forever.png';
    const file = path.join(cfg.hot, name);
    fs.writeFileSync(file, good.subarray(0, 1000));
    let n = 0;
    const grow = setInterval(() => fs.existsSync(file) && fs.appendFileSync(file, Buffer.alloc(100, n++)), 50);
    try {
      dropFrame(cfg.hot, 'beside-forever.png', good);
      await judged(['beside-forever.png']);
      expect(resultFor(name)).toHaveLength(0);
      await until('the growing file refused', () => resultFor(name).length > 0, 90_000, tail(daemon));
    } finally {
      clearInterval(grow);
    }
    const r = resultFor(name)[0]!;
    expect([r.verdict, r.reasons]).toEqual(['ERROR', ['BAD_FRAME']]);
    expect(r.error).toMatch(/kept changing/);
  }, 150_000);

  it('every file above was recorded exactly once in the history', async () => {
    const rows = await until('history caught up', () => {
      const r = historyRows(cfg.db);
      return r.length === sub.ids().size ? r : null;
    }, 30_000);
    expect(new Set(rows.map((r) => r.frame)).size).toBe(rows.length);
  });
});
