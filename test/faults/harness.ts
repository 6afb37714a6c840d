// The daemon as a child process (`node bin/xpole.js run --config FILE`) with real parts around it:
// a config file, a hot folder fed the way detector software writes (temp name, then rename), an
// MQTT subscriber that records every result message, and read-only looks into the history.
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import mqtt, { type MqttClient } from 'mqtt';
import { stringify } from 'yaml';
import { encodePng } from '../../src/frame/decode.ts';
import { renderFrame } from '../../src/synth/frame.ts';
import type { Result } from '../../src/types.ts';

export const ROOT = path.resolve(import.meta.dirname, '../..');
export const XPOLE = path.join(ROOT, 'bin/xpole.js');
const TRAINED = path.join(ROOT, 'models/xpole-hrnet.onnx');
/** The trained model when present; the fault tests check delivery, not accuracy, so the fixture does as well. */
export const MODEL = fs.existsSync(TRAINED) ? TRAINED : path.join(ROOT, 'test/fixtures/tiny-model.onnx');
export const LONG = process.env.XPOLE_LONG_FAULTS === '1';

export function tempDir(tag: string): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), `xpole-${tag}-`));
}

type Plain = { [k: string]: unknown };

function merge(a: Plain, b: Plain): Plain {
  const out: Plain = { ...a };
  for (const [k, v] of Object.entries(b)) {
    out[k] = v && typeof v === 'object' && !Array.isArray(v) && out[k] && typeof out[k] === 'object' ? merge(out[k] as Plain, v as Plain) : v;
  }
  return out;
}

/** A hot-folder station config in `dir` (history, hot folder beneath it), with `extra` merged in. */
export function writeConfig(dir: string, brokerUrl: string, extra: Plain = {}): { file: string; hot: string; db: string; root: string } {
  const hot = path.join(dir, 'hot');
  const db = path.join(dir, 'var/history.db');
  const station = `st${path.basename(dir).replace(/[^a-z0-9]/gi, '').slice(-6)}`;
  const config = merge(
    {
      station: { line: 'faults', station },
      model: { path: MODEL, providers: ['cpu'], intraOpNumThreads: 1 },
      source: { type: 'hotfolder', hotfolder: { dir: hot, stableMs: 100, pollMs: 50, retentionDays: 0 } },
      mqtt: { url: brokerUrl, protocolVersion: 5, replayRate: 2000 },
      history: { path: db },
      log: { level: 'info' },
      stopTimeoutSec: 20,
    },
    extra,
  );
  const file = path.join(dir, 'xpole.yaml');
  fs.writeFileSync(file, stringify(config));
  return { file, hot, db, root: `xpole/faults/${station}` };
}

export interface DaemonProcess {
  child: ChildProcess;
  /** stdout and stderr lines, as they came. */
  out: string[];
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/** `nodeArgs` go before the script (e.g. `--import probe.mjs` for the soak's heap samples). */
export function startDaemon(configFile: string, env: NodeJS.ProcessEnv = {}, nodeArgs: string[] = []): DaemonProcess {
  const child = spawn(process.execPath, [...nodeArgs, XPOLE, 'run', '--config', configFile], {
    cwd: ROOT,
    env: { ...process.env, NOTIFY_SOCKET: '', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const out: string[] = [];
  let partial = '';
  const collect = (d: Buffer) => {
    const lines = (partial + d.toString()).split('\n');
    partial = lines.pop()!;
    out.push(...lines);
  };
  child.stdout!.on('data', collect);
  child.stderr!.on('data', collect);
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((r) =>
    child.once('exit', (code, signal) => r({ code, signal })),
  );
  return { child, out, exited };
}

/** Stops a daemon with SIGTERM and waits; SIGKILL if it has not gone within `ms`. */
export async function stopDaemon(d: DaemonProcess, ms = 30_000): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
  if (d.child.exitCode === null && d.child.signalCode === null) d.child.kill('SIGTERM');
  const timer = setTimeout(() => d.child.kill('SIGKILL'), ms);
  try {
    return await d.exited;
  } finally {
    clearTimeout(timer);
  }
}

export async function until<T>(what: string, fn: () => T | undefined | null | false, ms: number, context: () => string = () => ''): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = fn();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}\n${context()}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

export const tail = (d: DaemonProcess, n = 40) => () => d.out.slice(-n).join('\n');

/** A few distinct synthetic frames (about 1 s each to render), PNG-encoded, reused under many names. */
export async function framePngs(count: number, size = 1000): Promise<Buffer[]> {
  const out: Buffer[] = [];
  for (let i = 0; i < count; i++) out.push(await encodePng(renderFrame({ seed: 100 + i, width: size, height: size, depth: 16, orientation: 'tips-right' }).image));
  return out;
}

let dropCount = 0;

/** Writes a frame the way detector software does: a temp name, then an atomic rename. */
export function dropFrame(hot: string, name: string, bytes: Uint8Array): void {
  // A short temp name: the final name may already use all 255 bytes a name can have.
  const tmp = path.join(hot, `.incoming-${process.pid}-${dropCount++}.tmp`);
  fs.writeFileSync(tmp, bytes);
  fs.renameSync(tmp, path.join(hot, name));
}

/** Records every message on {root}/result and {root}/status (MQTT 5, QoS 1, persistent session). */
export class Subscriber {
  readonly results: Result[] = [];
  readonly statuses: { state: string }[] = [];
  private constructor(private readonly client: MqttClient) {}

  static async connect(url: string, root: string, clientId = `sub-${process.pid}-${Date.now()}`): Promise<Subscriber> {
    // A persistent session: messages published while this subscriber is briefly away (a broker
    // restart) are queued for it by the broker, so every delivery is seen.
    const client = mqtt.connect(url, { clientId, clean: false, protocolVersion: 5, properties: { sessionExpiryInterval: 3600 }, reconnectPeriod: 200 });
    const sub = new Subscriber(client);
    client.on('message', (topic, payload) => {
      const msg = JSON.parse(payload.toString());
      if (topic.endsWith('/result')) sub.results.push(msg as Result);
      else if (topic.endsWith('/status')) sub.statuses.push(msg as { state: string });
    });
    await new Promise<void>((resolve, reject) => {
      client.once('connect', () => resolve());
      client.once('error', reject);
    });
    await client.subscribeAsync([`${root}/result`, `${root}/status`], { qos: 1 });
    return sub;
  }

  /** Distinct result ids seen. */
  ids(): Set<string> {
    return new Set(this.results.map((r) => r.id));
  }

  lastState(): string | undefined {
    return this.statuses.at(-1)?.state;
  }

  async close(): Promise<void> {
    await this.client.endAsync(true);
  }
}

/** A read-only look at the history while the daemon may be writing it (WAL allows it). */
export function readHistory<T>(db: string, fn: (d: Database.Database) => T): T {
  const d = new Database(db, { readonly: true, fileMustExist: true, timeout: 5000 });
  try {
    return fn(d);
  } finally {
    d.close();
  }
}

export function historyRows(db: string): { id: string; seq: number; frame: string; verdict: string }[] {
  if (!fs.existsSync(db)) return [];
  try {
    return readHistory(db, (d) => d.prepare('SELECT id, seq, frame, verdict FROM results ORDER BY seq').all() as { id: string; seq: number; frame: string; verdict: string }[]);
  } catch {
    return []; // not created yet (before the first migration)
  }
}

/** Results waiting for a PUBACK. */
export function outboxDepth(db: string): number {
  return readHistory(db, (d) => (d.prepare('SELECT COUNT(*) AS n FROM outbox').get() as { n: number }).n);
}
