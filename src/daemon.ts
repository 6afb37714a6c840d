// The daemon: source -> pipeline -> history + outbox -> MQTT, and its lifecycle.
//
// Frames are pulled from the source into a bounded queue (full: the hot folder waits, the
// simulator drops), up to `inFlight` frames are judged at once so that the stages of consecutive
// frames overlap (pipeline.inFlight analysed, pipeline.decodeAhead more decoding), and results
// are recorded strictly in seq order: one SQLite transaction writes the history row and its
// outbox row, then the source may let the frame go and the MQTT sink publishes from the outbox.
// A history that cannot be written (disk full, read-only) makes the daemon "degraded": the
// result is kept and retried, nothing new is taken, the frames stay in the hot folder, and it
// recovers on its own.
import net from 'node:net';
import { FrameError } from './errors.ts';
import type { Logger } from './log.ts';
import { HistoryUnavailableError, type History } from './sinks/history.ts';
import type { Source, SourceFrame } from './sources/source.ts';
import type { Image, Result } from './types.ts';

export type JudgeInput =
  | { frame: string; cellId: string | null; bytes: Uint8Array }
  | { frame: string; cellId: string | null; image: Image };

/** What the daemon needs from the inspection pipeline (src/inspect/pipeline.ts). */
export interface Judge {
  readonly model: { name: string; sha256: string; provider: string };
  /** Never throws for a bad frame (an ERROR result); safe to call concurrently. */
  judge(input: JudgeInput, ids: { id: string; seq: number; ts: string }): Promise<Result>;
  close(): Promise<void> | void;
}

/** What the daemon needs from the MQTT sink (src/sinks/mqtt.ts). */
export interface Publisher {
  start(): void;
  readonly connected: boolean;
  onResult(result: Result): void;
  setState(state: 'online' | 'degraded'): void;
  stop(timeoutMs?: number): Promise<void>;
  stats(): object;
}

export interface DaemonParts {
  station: string;
  version: string;
  log: Logger;
  source: Source;
  pipeline: Judge;
  history: History;
  publisher: Publisher;
  /** sd_notify: false when not under systemd. */
  notify: (state: string) => boolean;
  /** Frames handed to the pipeline at once. */
  inFlight: number;
  queueDepth: number;
  stopTimeoutSec: number;
  retention: () => void;
  /** Default 10 s (SPEC). */
  statsIntervalMs?: number;
  /** From $WATCHDOG_USEC; 0 or absent: no watchdog. */
  watchdogUsec?: number;
}

export type DaemonState = 'starting' | 'online' | 'degraded' | 'stopping' | 'stopped';

interface Started {
  frame: SourceFrame;
  startedAt: number;
  result: Promise<Result>;
}

const RETRY_MIN_MS = 500;
const RETRY_MAX_MS = 15_000;
const PERCENTILES = [50, 90, 99] as const;

export class Daemon {
  state: DaemonState = 'starting';
  private nextSeq: number;
  /** The last seq in the history. */
  private recorded: number;
  private readonly queue: SourceFrame[] = [];
  private readonly started: Started[] = [];
  private stopping = false;
  private stopDeadline = Infinity;
  private wakeDispatch: (() => void) | null = null;
  private wakePump: (() => void) | null = null;
  private committing: Promise<void> = Promise.resolve();
  private readonly begunAt = Date.now();
  // Progress markers for the watchdog: it is fed only when these move or the daemon is idle.
  private commits = 0;
  private retries = 0;
  private readonly totals = { frames: 0, PASS: 0, FAIL: 0, ERROR: 0, skippedRecovered: 0 };
  private window = new Map<string, number[]>();
  private windowFrames = 0;
  private windowStart = performance.now();
  private lastStats: Record<string, unknown> = {};
  private timers: NodeJS.Timeout[] = [];
  private loops: Promise<void>[] = [];

  constructor(private readonly p: DaemonParts) {
    this.recorded = p.history.lastSeq();
    this.nextSeq = this.recorded + 1;
  }

  /** Starts the loops. The model is already loaded and warmed up: READY=1 is sent here. */
  start(): void {
    const { log, notify } = this.p;
    this.state = 'online';
    this.p.publisher.start();
    this.p.publisher.setState('online');
    notify('READY=1');
    notify(`STATUS=online: waiting for frames from the ${this.p.source.kind}; next seq ${this.nextSeq}`);
    log.info(`daemon: online; source ${this.p.source.kind}, provider ${this.p.pipeline.model.provider}, next seq ${this.nextSeq}`);
    this.loops = [this.pumpLoop(), this.dispatchLoop()];
    const every = this.p.statsIntervalMs ?? 10_000;
    this.timers.push(setInterval(() => this.emitStats(), every));
    this.timers.push(setInterval(() => this.p.retention(), 3_600_000));
    const wd = this.p.watchdogUsec ?? 0;
    if (wd > 0) {
      let seen = { commits: this.commits, retries: this.retries };
      // Half the watchdog period, as sd_watchdog_enabled(3) recommends.
      this.timers.push(
        setInterval(() => {
          const moved = this.commits !== seen.commits || this.retries !== seen.retries;
          const idle = this.started.length === 0 && this.queue.length === 0 && (this.p.source.idle || this.stopping);
          seen = { commits: this.commits, retries: this.retries };
          // Degraded is handled (the retry loop runs on this same event loop): a restart would not help.
          if (moved || idle || this.state === 'degraded') notify('WATCHDOG=1');
          else log.warning('daemon: no progress in half a watchdog period; the watchdog is not fed');
        }, Math.max(50, wd / 2000)),
      );
    }
  }

  /** SIGTERM: stop taking frames, finish those taken, flush, publish "stopped". 0 when clean, 1 when the time ran out. */
  async stop(): Promise<number> {
    if (this.stopping) return 1;
    const { log, notify } = this.p;
    this.stopping = true;
    this.stopDeadline = Date.now() + this.p.stopTimeoutSec * 1000;
    this.state = 'stopping';
    notify('STOPPING=1');
    log.info(`daemon: stopping; ${this.queue.length + this.started.length} frame(s) taken are finished first`);
    this.p.source.stop();
    this.wakePump?.();
    this.wakeDispatch?.();
    const leftMs = () => Math.max(0, this.stopDeadline - Date.now());
    let clean = await withTimeout(Promise.all(this.loops).then(() => this.committing), leftMs());
    for (const t of this.timers) clearInterval(t);
    this.emitStats();
    // The outbox is flushed while the broker is there; what is left waits for the next start.
    while (this.p.publisher.connected && this.outboxDepth() > 0 && leftMs() > 1000) await sleep(20);
    const waiting = this.outboxDepth();
    if (waiting > 0) log.warning(`daemon: ${waiting} result(s) stay in the outbox for the next start`);
    await this.p.publisher.stop(Math.min(5000, Math.max(500, leftMs())));
    await this.p.pipeline.close();
    this.p.history.close();
    if (!clean) {
      log.err(`daemon: frames still unfinished after stopTimeoutSec (${this.p.stopTimeoutSec} s); they are judged again at the next start`);
      clean = false;
    }
    this.state = 'stopped';
    log.info(`daemon: stopped after ${this.totals.frames} frame(s)`);
    return clean ? 0 : 1;
  }

  /** The stats object published on {root}/stats (the last 10 s window). */
  stats(): Record<string, unknown> {
    return 'ts' in this.lastStats ? this.lastStats : this.snapshot();
  }

  private outboxDepth(): number {
    try {
      return this.p.history.outbox.depth();
    } catch {
      return -1;
    }
  }

  /** Source -> queue. Waits while the queue is full: that is the backpressure. */
  private async pumpLoop(): Promise<void> {
    while (!this.stopping) {
      if (this.queue.length >= this.p.queueDepth) {
        await new Promise<void>((resolve) => (this.wakePump = resolve));
        this.wakePump = null;
        continue;
      }
      let frame: SourceFrame | null;
      try {
        frame = await this.p.source.next();
      } catch (err) {
        this.p.log.err(`daemon: source ${this.p.source.kind} failed: ${(err as Error).message}; retrying in 1 s`);
        await sleep(1000);
        continue;
      }
      if (frame === null) break;
      this.queue.push(frame);
      this.wakeDispatch?.();
    }
  }

  /** Queue -> pipeline, at most inFlight at once; each result is committed in order. */
  private async dispatchLoop(): Promise<void> {
    for (;;) {
      if (this.queue.length === 0 && this.stopping) {
        // The pump may still be handing over a frame it took just before the stop: it is judged too.
        await this.loops[0];
        if (this.queue.length === 0) break;
      }
      if (this.queue.length === 0 || this.started.length >= this.p.inFlight) {
        await new Promise<void>((resolve) => (this.wakeDispatch = resolve));
        this.wakeDispatch = null;
        continue;
      }
      const frame = this.queue.shift()!;
      this.wakePump?.();
      const seq = this.nextSeq++;
      const entry: Started = { frame, startedAt: performance.now(), result: this.judge(frame, seq) };
      this.started.push(entry);
      this.committing = this.committing.then(() => this.commit(entry));
    }
  }

  private async judge(f: SourceFrame, seq: number): Promise<Result> {
    const ids = { id: `${this.p.station}-${seq}`, seq, ts: new Date().toISOString() };
    if ('error' in f.input) return this.errorResult(f, ids, f.input.error);
    try {
      const input: JudgeInput = 'bytes' in f.input
        ? { frame: f.frame, cellId: f.cellId, bytes: f.input.bytes }
        : { frame: f.frame, cellId: f.cellId, image: f.input.image };
      return await this.p.pipeline.judge(input, ids);
    } catch (err) {
      // The pipeline promises ERROR results for bad frames; anything thrown is our bug, still one ERROR.
      this.p.log.err(`daemon: pipeline threw on ${JSON.stringify(f.frame)}: ${(err as Error).stack ?? err}`);
      return this.errorResult(f, ids, err instanceof FrameError ? err : new FrameError('INTERNAL', (err as Error).message));
    } finally {
      // Every stage has finished with the frame's bytes (the result holds none of them).
      f.release?.();
    }
  }

  private errorResult(f: SourceFrame, ids: { id: string; seq: number; ts: string }, err: FrameError): Result {
    return {
      schema: 'xpole.result/1',
      ...ids,
      frame: f.frame,
      cellId: f.cellId,
      verdict: 'ERROR',
      reasons: [err.reason],
      overhangMm: [],
      poles: [],
      roi: null,
      timingsMs: {},
      model: { ...this.p.pipeline.model },
      error: err.message,
    };
  }

  /** Records (retrying while the history is unavailable), lets the source release the frame, publishes. */
  private async commit(entry: Started): Promise<void> {
    const { log, history } = this.p;
    const result = await entry.result;
    const f = entry.frame;
    try {
      const earlier = f.recovered ? this.recordedBefore(f) : undefined;
      if (earlier) {
        await f.ack(earlier.verdict);
        return;
      }
      // The seq given at dispatch is provisional: seqs in the history stay contiguous even
      // when a recovered frame turned out to be recorded already.
      const seq = this.recorded + 1;
      result.seq = seq;
      result.id = `${this.p.station}-${seq}`;
      let delay = RETRY_MIN_MS;
      for (;;) {
        try {
          history.record(result);
          break;
        } catch (err) {
          if (!(err instanceof HistoryUnavailableError)) throw err;
          if (this.state !== 'degraded') {
            this.state = 'degraded';
            this.p.publisher.setState('degraded');
            this.p.notify(`STATUS=degraded: history unavailable (${err.code}); frames wait in the source`);
            log.err(`daemon: degraded: ${err.message}; frames stay in the ${this.p.source.kind} and recording is retried`);
          }
          this.retries++;
          if (Date.now() + delay > this.stopDeadline) throw new Error(`history still unavailable at the stop deadline (${err.code})`);
          await sleep(delay);
          delay = Math.min(RETRY_MAX_MS, delay * 2);
        }
      }
      if (this.state === 'degraded') {
        this.state = 'online';
        this.p.publisher.setState('online');
        log.info('daemon: history writable again; online');
      }
      this.recorded = seq;
      this.commits++;
      await f.ack(result.verdict);
      this.p.publisher.onResult(result);
      this.account(result, entry);
    } catch (err) {
      log.err(`daemon: result for ${JSON.stringify(f.frame)} not recorded: ${(err as Error).message}`);
    } finally {
      this.started.splice(this.started.indexOf(entry), 1);
      this.wakeDispatch?.();
    }
  }

  /**
   * A crash leftover whose result is already in the history (recorded after the file was
   * written, so it is this file's result and not an older file's of the same name).
   */
  private recordedBefore(f: SourceFrame): Result | undefined {
    let found: Result | undefined;
    try {
      found = this.p.history.findByFrame(f.frame);
    } catch {
      return undefined;
    }
    if (!found || (f.writtenAt !== undefined && Date.parse(found.ts) < f.writtenAt)) return undefined;
    this.totals.skippedRecovered++;
    this.p.log.info(`daemon: ${JSON.stringify(f.frame)} was already recorded as ${found.id} (${found.verdict}) before a restart; not judged twice`);
    return found;
  }

  private account(r: Result, entry: Started): void {
    const now = performance.now();
    this.totals.frames++;
    this.totals[r.verdict]++;
    this.windowFrames++;
    const add = (stage: string, ms: number) => {
      let list = this.window.get(stage);
      if (!list) this.window.set(stage, (list = []));
      list.push(ms);
    };
    for (const [stage, ms] of Object.entries(r.timingsMs)) if (Number.isFinite(ms)) add(stage, ms);
    add('queue', entry.startedAt - entry.frame.arrivedAt);
    add('endToEnd', now - entry.frame.arrivedAt);
    const reasons = r.reasons.length > 0 ? ` ${r.reasons.join(',')}` : '';
    const measured = r.overhangMm.filter((mm): mm is number => mm !== null);
    const overhang = measured.length > 0 ? ` overhang ${Math.min(...measured).toFixed(3)}..${Math.max(...measured).toFixed(3)} mm` : '';
    const detail = r.error ? `: ${r.error}` : '';
    this.p.log.debug(`frame ${r.id} ${JSON.stringify(r.frame)} cell ${r.cellId ?? '-'} ${r.verdict}${reasons}${overhang} ${(now - entry.frame.arrivedAt).toFixed(1)} ms${detail}`);
    if (r.verdict === 'ERROR') this.p.log.warning(`frame ${r.id} ${JSON.stringify(r.frame)}: ERROR ${r.reasons.join(',')}${detail}`);
  }

  /** The stats of the window so far (10 s, reset by emitStats). */
  private snapshot(): Record<string, unknown> {
    const seconds = Math.max(1e-3, (performance.now() - this.windowStart) / 1000);
    const latencyMs: Record<string, Record<string, number>> = {};
    for (const [stage, values] of this.window) latencyMs[stage] = percentiles(values);
    return {
      ts: new Date().toISOString(),
      state: this.state,
      uptimeSec: Math.round((Date.now() - this.begunAt) / 1000),
      frames: this.totals.frames,
      framesPerSec: round(this.windowFrames / seconds, 2),
      verdicts: { PASS: this.totals.PASS, FAIL: this.totals.FAIL, ERROR: this.totals.ERROR },
      latencyMs,
      queueDepth: this.queue.length,
      inFlight: this.started.length,
      outboxDepth: this.outboxDepth(),
      provider: this.p.pipeline.model.provider,
      source: { kind: this.p.source.kind, ...this.p.source.counters() },
      mqtt: this.p.publisher.stats(),
      recoveredAlreadyRecorded: this.totals.skippedRecovered,
    };
  }

  private emitStats(): void {
    const now = performance.now();
    this.lastStats = this.snapshot();
    const rate = this.lastStats.framesPerSec as number;
    const outboxDepth = this.lastStats.outboxDepth as number;
    const latencyMs = this.lastStats.latencyMs as Record<string, Record<string, number>>;
    this.window = new Map();
    this.windowFrames = 0;
    this.windowStart = now;
    const e2e = latencyMs.endToEnd;
    const summary =
      `${this.state}: ${rate.toFixed(1)} frames/s, ${this.totals.frames} judged (PASS ${this.totals.PASS}, FAIL ${this.totals.FAIL}, ERROR ${this.totals.ERROR}), ` +
      `queue ${this.queue.length}, outbox ${outboxDepth}` +
      (e2e ? `, latency p50 ${e2e.p50} ms p99 ${e2e.p99} ms` : '');
    this.p.notify(`STATUS=${summary}`);
    this.p.log.info(`stats: ${summary}`);
  }
}

function percentiles(values: number[]): Record<string, number> {
  const sorted = [...values].sort((a, b) => a - b);
  const out: Record<string, number> = {};
  for (const p of PERCENTILES) out[`p${p}`] = round(sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!, 2);
  out.max = round(sorted[sorted.length - 1]!, 2);
  return out;
}

function round(v: number, digits: number): number {
  const f = 10 ** digits;
  return Math.round(v * f) / f;
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** True when p settled within ms. */
async function withTimeout(p: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<boolean>((r) => (timer = setTimeout(() => r(false), ms)));
  try {
    return await Promise.race([p.then(() => true), timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** The embedded default's broker (aedes) on host:port; resolves once it listens. */
export async function startEmbeddedBroker(host: string, port: number): Promise<{ close(): Promise<void> }> {
  // aedes is CommonJS: its default export is the module, which carries createBroker.
  const { default: aedes } = await import('aedes');
  const broker = aedes.createBroker();
  const server = net.createServer(broker.handle);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve());
  });
  return {
    close: () =>
      new Promise<void>((resolve) => {
        broker.close(() => server.close(() => resolve()));
        // Clients still connected would keep server.close waiting.
        setTimeout(resolve, 1000).unref();
      }),
  };
}
