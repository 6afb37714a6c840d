// Startup and per-frame faults of the inference parts, with the daemon as a child process:
// a missing, corrupt or card-less model and a missing addon stop it with a clear message and
// SPEC's exit code (2: the configuration names something that is not there; 1: a failure);
// providers that cannot load are logged as warnings and skipped; an addon that fails on a frame
// gives that frame an ERROR result and the daemon carries on.
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Mosquitto, mosquittoAvailable } from '../helpers/mosquitto.ts';
import {
  dropFrame, framePngs, historyRows, MODEL, readHistory, ROOT, startDaemon, stopDaemon, Subscriber, tail, tempDir, until, writeConfig,
  type DaemonProcess,
} from './harness.ts';

const card = (model: string) => model.replace(/\.onnx$/, '.json');

describe.skipIf(!mosquittoAvailable())('model and addon faults', () => {
  let broker: Mosquitto;
  let dir: string;
  const daemons: DaemonProcess[] = [];

  beforeAll(async () => {
    broker = await Mosquitto.start();
    dir = tempDir('model');
  });
  afterAll(async () => {
    for (const d of daemons) await stopDaemon(d);
    await broker?.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  /** Starts a daemon expected to refuse to start; its exit code and output. */
  async function failedStart(name: string, extra: Record<string, unknown>, env: NodeJS.ProcessEnv = {}): Promise<{ code: number | null; text: string }> {
    const sub = path.join(dir, name);
    fs.mkdirSync(sub);
    const cfg = writeConfig(sub, broker.url, extra);
    const d = startDaemon(cfg.file, env);
    daemons.push(d);
    const timer = setTimeout(() => d.child.kill('SIGKILL'), 60_000);
    const { code } = await d.exited;
    clearTimeout(timer);
    return { code, text: d.out.join('\n') };
  }

  /** A model file and card in `sub`, written by `edit` from the fixture. */
  function modelCopy(sub: string, edit: (bytes: Buffer, card: Record<string, unknown>) => { bytes: Buffer | null; card: Record<string, unknown> | null }): string {
    fs.mkdirSync(sub, { recursive: true });
    const file = path.join(sub, 'm.onnx');
    const out = edit(fs.readFileSync(MODEL), JSON.parse(fs.readFileSync(card(MODEL), 'utf8')));
    if (out.bytes) fs.writeFileSync(file, out.bytes);
    if (out.card) fs.writeFileSync(card(file), JSON.stringify({ ...out.card, file: 'm.onnx' }));
    return file;
  }

  it('a missing model file: exit 2 naming model.path', async () => {
    const r = await failedStart('missing', { model: { path: path.join(dir, 'nowhere.onnx') } });
    expect(r.code, r.text).toBe(2);
    expect(r.text).toMatch(/model\.path.*nowhere\.onnx/);
  });

  it('a truncated model file: exit 1, the sha256 check says it does not match its card', async () => {
    const m = modelCopy(path.join(dir, 'm-trunc'), (b, c) => ({ bytes: b.subarray(0, b.length >> 1), card: c }));
    const r = await failedStart('trunc', { model: { path: m } });
    expect(r.code, r.text).toBe(1);
    expect(r.text).toMatch(/does not match its card.*corrupt or replaced/);
  });

  it('a corrupt model whose card was updated to match: exit 1, no provider could run it', async () => {
    const m = modelCopy(path.join(dir, 'm-garbage'), (b, c) => {
      const bytes = Buffer.from(b);
      for (let i = 64; i < bytes.length; i += 7) bytes[i] ^= 0xa5;
      return { bytes, card: { ...c, sha256: createHash('sha256').update(bytes).digest('hex') } };
    });
    const r = await failedStart('garbage', { model: { path: m } });
    expect(r.code, r.text).toBe(1);
    expect(r.text).toMatch(/no execution provider could run it/);
  });

  it('a model without its card: exit 1 naming the card file', async () => {
    const m = modelCopy(path.join(dir, 'm-nocard'), (b) => ({ bytes: b, card: null }));
    const r = await failedStart('nocard', { model: { path: m } });
    expect(r.code, r.text).toBe(1);
    expect(r.text).toMatch(/model card .*m\.json cannot be read/);
  });

  it('a missing native addon: exit 1 saying how to build it', async () => {
    const r = await failedStart('noaddon', {}, { XPOLE_NATIVE: path.join(dir, 'missing.node') });
    expect(r.code, r.text).toBe(1);
    expect(r.text).toMatch(/cannot load the native addon.*npm run build/);
  });

  it('provider fallback tensorrt -> cuda -> cpu: a warning each, cpu in status and results', async () => {
    const sub = path.join(dir, 'fallback');
    fs.mkdirSync(sub);
    const cfg = writeConfig(sub, broker.url, { model: { providers: ['tensorrt', 'cuda', 'cpu'] } });
    const s = await Subscriber.connect(broker.url, cfg.root);
    const d = startDaemon(cfg.file);
    daemons.push(d);
    await until('online', () => s.lastState() === 'online', 60_000, tail(d));
    const warnings = d.out.filter((l) => l.startsWith('<4>'));
    expect(warnings.some((l) => /provider 'tensorrt' unavailable/.test(l)), warnings.join('\n')).toBe(true);
    expect(warnings.some((l) => /provider 'cuda' unavailable/.test(l)), warnings.join('\n')).toBe(true);
    expect((s.statuses.at(-1) as { provider?: string }).provider).toBe('cpu');
    dropFrame(cfg.hot, 'one.png', (await framePngs(1))[0]!);
    await until('a result', () => s.results.length > 0, 60_000, tail(d));
    expect(s.results[0]!.model.provider).toBe('cpu');
    expect((await stopDaemon(d)).code).toBe(0);
    await s.close();
  });

  it('an addon that fails on some frames: ERROR INTERNAL for those, the others judged, the daemon carries on', async () => {
    const sub = path.join(dir, 'flaky');
    fs.mkdirSync(sub);
    // Fault injection: the real addon, except that corner detection fails as a native exception
    // would (std::bad_alloc surfaces as an Error) on the 1200-px frames and their 600-px binned
    // halves (the ROI stage's second scale). A frame takes several detections (the refinement's,
    // the ROI stage's ladder at two scales), so the faulty frames are chosen by size, not by count.
    const flaky = path.join(sub, 'flaky-addon.cjs');
    fs.writeFileSync(
      flaky,
      `const real = require(${JSON.stringify(path.join(ROOT, 'build/Release/xpole_native.node'))});
module.exports = { ...real, detectAsync: (pixels, width, ...rest) => (width === 1200 || width === 600 ? Promise.reject(new Error('std::bad_alloc')) : real.detectAsync(pixels, width, ...rest)) };
`,
    );
    const cfg = writeConfig(sub, broker.url, { pipeline: { inFlight: 1 } });
    const s = await Subscriber.connect(broker.url, cfg.root);
    const d = startDaemon(cfg.file, { XPOLE_NATIVE: flaky });
    daemons.push(d);
    await until('online', () => s.lastState() === 'online', 60_000, tail(d));
    const pngs = await framePngs(2);
    const [faulty] = await framePngs(1, 1200);
    for (let i = 0; i < 9; i++) dropFrame(cfg.hot, `f-${i}.png`, i % 3 === 2 ? faulty! : pngs[i % 2]!);
    await until('9 rows', () => historyRows(cfg.db).length === 9, 60_000, tail(d));
    const rows = readHistory(cfg.db, (db) => db.prepare('SELECT frame, verdict, reasons, error FROM results ORDER BY seq').all()) as {
      frame: string; verdict: string; reasons: string; error: string | null;
    }[];
    const internal = rows.filter((r) => r.reasons.includes('INTERNAL'));
    expect(internal.map((r) => r.frame), JSON.stringify(rows)).toEqual(['f-2.png', 'f-5.png', 'f-8.png']);
    for (const e of internal) {
      expect([e.verdict, JSON.parse(e.reasons)]).toEqual(['ERROR', ['INTERNAL']]);
      expect(e.error).toMatch(/bad_alloc/);
    }
    const errors = rows.filter((r) => r.verdict === 'ERROR');
    // A frame's file moves to failed/ after its result is recorded: wait for the last move.
    const failed = () => fs.readdirSync(path.join(cfg.hot, 'failed')).sort();
    await until('the ERROR frames in failed/', () => failed().length >= errors.length, 10_000, tail(d));
    expect(failed()).toEqual(errors.map((e) => e.frame).sort());
    expect(d.child.exitCode).toBeNull();
    expect((await stopDaemon(d)).code).toBe(0);
    await s.close();
  });
});
