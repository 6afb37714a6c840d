// The MQTT sink, SPEC "MQTT": result (from the durable outbox, at least once), verdict (fresh
// only, with MQTT 5 message expiry), retained status with a last will, stats every 10 s.
// Durability lives in the outbox, not in mqtt.js: a row leaves the outbox on PUBACK only; on
// a lost connection mqtt.js's in-flight messages are dropped and the outbox is replayed after
// the next CONNACK, at a bounded pace.
import fs from 'node:fs';
import type net from 'node:net';
import mqtt, { type IClientOptions, type IClientPublishOptions, type MqttClient } from 'mqtt';
import { UsageError } from '../errors.ts';
import type { Result } from '../types.ts';
import type { Outbox, OutboxRow } from './outbox.ts';

export type StatusState = 'online' | 'degraded' | 'offline' | 'stopped';

/** What the sink needs from a logger (src/log.ts's Logger fits). */
export interface SinkLog {
  debug(msg: string): void;
  info(msg: string): void;
  warning(msg: string): void;
  err(msg: string): void;
}

export interface MqttTlsOptions {
  /** PEM file of the CA that signed the broker's certificate (default: the system's CAs). */
  ca?: string;
  /** Client certificate and key PEM files, for brokers that require client authentication. */
  cert?: string;
  key?: string;
  /** Verify the broker's certificate and name. Default true; false only for a lab. */
  rejectUnauthorized?: boolean;
}

export interface MqttSinkOptions {
  /** mqtt://host:port or mqtts://host:port (TLS). Credentials do not belong here. */
  url: string;
  /** Topic root, e.g. xpole/line1/st3. */
  root: string;
  /** One per station: the broker drops an older connection with the same id. */
  clientId: string;
  protocolVersion?: 4 | 5;
  username?: string;
  /** The secret itself (the config reads it from a file or a systemd credential); never logged. */
  password?: string;
  tls?: MqttTlsOptions;
  /** MQTT 5 message expiry of verdicts, seconds (default 60). */
  verdictExpirySec?: number;
  keepaliveSec?: number;
  connectTimeoutMs?: number;
  /** Reconnect backoff: doubles from min to max (default 500 ms .. 30 s), with jitter. */
  reconnectMinMs?: number;
  reconnectMaxMs?: number;
  /** Results published and not yet acknowledged, at most (default 32). */
  maxInFlight?: number;
  /** Results published per second at most, so a replay after an outage does not flood the broker (default 200). */
  replayPerSec?: number;
  statsIntervalMs?: number;
  /** The status message's fixed fields. */
  status: { version: string; model: string; provider: string };
  /** Payload of {root}/stats, built by the daemon every statsIntervalMs. */
  stats?: () => object;
  outbox: Outbox;
  log?: SinkLog;
}

export interface MqttSinkCounters {
  connected: boolean;
  connects: number;
  resultsAcked: number;
  verdictsPublished: number;
  /** Verdicts not sent because the broker was away (they are never replayed). */
  verdictsDropped: number;
  inFlight: number;
}

const SILENT: SinkLog = { debug() {}, info() {}, warning() {}, err() {} };

function readPem(file: string, field: string): Buffer {
  try {
    return fs.readFileSync(file);
  } catch (err) {
    throw new UsageError(`mqtt.tls.${field}: cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
}

/** The URL without any userinfo, for logs. */
function safeUrl(url: string): string {
  const u = new URL(url);
  u.username = '';
  u.password = '';
  return u.toString();
}

/** The small flat form for PLC clients (SPEC: {root}/verdict). */
export function verdictPayload(r: Result): string {
  return JSON.stringify({ id: r.id, seq: r.seq, cellId: r.cellId, verdict: r.verdict, reasons: r.reasons });
}

export class MqttSink {
  readonly topics: { result: string; verdict: string; status: string; stats: string };
  private readonly client: MqttClient;
  private readonly log: SinkLog;
  private readonly v5: boolean;
  private readonly maxInFlight: number;
  private readonly replayPerSec: number;
  private state: StatusState = 'online';
  private since = new Date().toISOString();
  private readonly statusFields: Readonly<{ version: string; model: string; provider: string }>;
  /** Outbox ids published on the current connection and not yet acknowledged. */
  private readonly inFlight = new Set<string>();
  /** Outbox ids the broker refused (MQTT 5 reason code), retried after a pause. */
  private readonly held = new Map<string, number>();
  /** Bumped on every connection: callbacks from an older connection are ignored. */
  private epoch = 0;
  private tokens: number;
  private tokensAt = Date.now();
  private pumpTimer: NodeJS.Timeout | undefined;
  private reconnectTimer: NodeJS.Timeout | undefined;
  private statsTimer: NodeJS.Timeout | undefined;
  private attempt = 0;
  private lastError = '';
  private stopping = false;
  /** Connected at least once since the last close: a loss is worth one warning. */
  private online = false;
  private readonly counters = { connects: 0, resultsAcked: 0, verdictsPublished: 0, verdictsDropped: 0 };

  constructor(private readonly opts: MqttSinkOptions) {
    const url = new URL(opts.url);
    if (url.protocol !== 'mqtt:' && url.protocol !== 'mqtts:') {
      throw new UsageError(`mqtt.url: expected mqtt:// or mqtts://, got '${url.protocol}//'`);
    }
    if (url.username || url.password) throw new UsageError('mqtt.url: put the username and password file in their own fields, not in the URL');
    this.log = opts.log ?? SILENT;
    this.v5 = (opts.protocolVersion ?? 5) === 5;
    this.maxInFlight = opts.maxInFlight ?? 32;
    this.replayPerSec = opts.replayPerSec ?? 200;
    this.tokens = this.maxInFlight;
    this.statusFields = { ...opts.status };
    const root = opts.root.replace(/\/+$/, '');
    this.topics = { result: `${root}/result`, verdict: `${root}/verdict`, status: `${root}/status`, stats: `${root}/stats` };

    const tls = opts.tls ?? {};
    const clientOptions: IClientOptions = {
      clientId: opts.clientId,
      protocolVersion: this.v5 ? 5 : 4,
      clean: true,
      keepalive: opts.keepaliveSec ?? 30,
      connectTimeout: opts.connectTimeoutMs ?? 10_000,
      // Reconnects are ours (exponential backoff); mqtt.js's would be at a fixed period.
      reconnectPeriod: 0,
      // Nothing is queued inside mqtt.js while offline: results wait in the outbox.
      queueQoSZero: false,
      resubscribe: false,
      manualConnect: true,
      username: opts.username,
      password: opts.password,
      rejectUnauthorized: tls.rejectUnauthorized !== false,
      ca: tls.ca ? readPem(tls.ca, 'ca') : undefined,
      cert: tls.cert ? readPem(tls.cert, 'cert') : undefined,
      key: tls.key ? readPem(tls.key, 'key') : undefined,
      will: this.will(),
    };
    this.client = mqtt.connect(opts.url, clientOptions);
    this.client.on('connect', () => this.onConnect());
    this.client.on('close', () => this.onClose());
    this.client.on('error', (err) => this.onError(err));
  }

  /** Connects (and keeps reconnecting); results queued in the outbox are replayed once connected. */
  start(): void {
    this.log.info(`mqtt: connecting to ${safeUrl(this.opts.url)} as ${this.opts.clientId} (MQTT ${this.v5 ? '5' : '3.1.1'})`);
    this.client.connect();
  }

  get connected(): boolean {
    return this.client.connected;
  }

  stats(): MqttSinkCounters {
    return { connected: this.client.connected, ...this.counters, inFlight: this.inFlight.size };
  }

  /**
   * After History.record(result): publishes the verdict now (only while connected: a verdict
   * is worth nothing once its cell has left the station) and the result from the outbox.
   */
  onResult(result: Result): void {
    this.publishVerdict(result);
    this.pump();
  }

  /** online / degraded (e.g. history unavailable): republished retained at once. */
  setState(state: 'online' | 'degraded'): void {
    if (state === this.state) return;
    this.state = state;
    this.since = new Date().toISOString();
    this.publishStatus();
  }

  /**
   * Clean stop: publishes "stopped" (retained), waits up to timeoutMs for it and for results in
   * flight to be acknowledged, then disconnects (a clean DISCONNECT: the last will is not sent).
   * Unacknowledged results stay in the outbox for the next start.
   */
  async stop(timeoutMs = 5000): Promise<void> {
    this.stopping = true;
    clearTimeout(this.pumpTimer);
    clearTimeout(this.reconnectTimer);
    clearInterval(this.statsTimer);
    if (!this.client.connected) {
      await this.client.endAsync(true);
      return;
    }
    const deadline = Date.now() + timeoutMs;
    const stopped = new Promise<void>((resolve) => {
      this.client.publish(this.topics.status, this.statusPayload('stopped'), { qos: 1, retain: true }, () => resolve());
    });
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([stopped, new Promise((r) => (timer = setTimeout(r, timeoutMs)))]);
    clearTimeout(timer);
    while (this.inFlight.size > 0 && Date.now() < deadline && this.client.connected) {
      await new Promise((r) => setTimeout(r, 20));
    }
    await this.client.endAsync(!this.client.connected);
    this.log.info('mqtt: stopped');
  }

  private will(): IClientOptions['will'] {
    return { topic: this.topics.status, payload: Buffer.from(this.statusPayload('offline')), qos: 1, retain: true };
  }

  private statusPayload(state: StatusState): string {
    const since = state === 'offline' || state === 'stopped' ? new Date().toISOString() : this.since;
    return JSON.stringify({ state, ...this.statusFields, since });
  }

  private onConnect(): void {
    // A verdict and a result go out back to back: with Nagle's algorithm the second waits for
    // the broker's delayed ACK (~40 ms). mqtt.js does not set it; the stream is a new socket
    // on every connection.
    (this.client.stream as Partial<net.Socket>).setNoDelay?.(true);
    this.epoch++;
    this.attempt = 0;
    this.lastError = '';
    this.online = true;
    this.held.clear();
    this.counters.connects++;
    this.log.info(`mqtt: connected to ${safeUrl(this.opts.url)}; ${this.safeDepth()} results waiting in the outbox`);
    this.publishStatus();
    if (this.opts.stats && !this.statsTimer) {
      this.statsTimer = setInterval(() => this.publishStats(), this.opts.statsIntervalMs ?? 10_000);
      this.statsTimer.unref();
    }
    this.pump();
  }

  private onClose(): void {
    const wasOnline = this.online;
    this.online = false;
    this.epoch++;
    this.inFlight.clear();
    // Whatever mqtt.js still holds would be resent on its own after reconnecting: drop it, the
    // outbox is the only store (and stale verdicts must never be resent).
    for (const id of Object.keys(this.client.outgoing)) this.client.removeOutgoingMessage(Number(id));
    if (this.stopping) return;
    if (wasOnline) this.log.warning(`mqtt: connection lost; results wait in the outbox until it is back`);
    const min = this.opts.reconnectMinMs ?? 500;
    const max = this.opts.reconnectMaxMs ?? 30_000;
    const delay = Math.min(max, min * 2 ** this.attempt) * (0.8 + 0.4 * Math.random());
    this.attempt++;
    clearTimeout(this.reconnectTimer);
    this.reconnectTimer = setTimeout(() => {
      if (!this.stopping) {
        // The will's "since" is the time of this attempt.
        this.client.options.will = this.will();
        this.client.reconnect();
      }
    }, delay);
  }

  private onError(err: Error): void {
    // Logged once per distinct error per outage: a broker down for hours is one warning.
    const msg = err.message;
    if (msg === this.lastError) {
      this.log.debug(`mqtt: ${msg}`);
      return;
    }
    this.lastError = msg;
    this.log.warning(`mqtt: ${safeUrl(this.opts.url)}: ${msg}`);
  }

  private publishStatus(): void {
    if (!this.client.connected || this.stopping) return;
    this.client.publish(this.topics.status, this.statusPayload(this.state), { qos: 1, retain: true });
  }

  private publishStats(): void {
    if (!this.client.connected || !this.opts.stats) return;
    let payload: string;
    try {
      payload = JSON.stringify(this.opts.stats());
    } catch (err) {
      this.log.warning(`mqtt: stats not published: ${(err as Error).message}`);
      return;
    }
    this.client.publish(this.topics.stats, payload, { qos: 0, retain: false });
  }

  private publishVerdict(r: Result): void {
    if (!this.client.connected || this.stopping) {
      this.counters.verdictsDropped++;
      return;
    }
    const options: IClientPublishOptions = { qos: 1, retain: false };
    if (this.v5) options.properties = { messageExpiryInterval: this.opts.verdictExpirySec ?? 60 };
    this.counters.verdictsPublished++;
    this.client.publish(this.topics.verdict, verdictPayload(r), options);
  }

  private safeDepth(): number | string {
    try {
      return this.opts.outbox.depth();
    } catch {
      return 'unknown';
    }
  }

  /** Publishes pending outbox rows in seq order while in-flight slots and rate tokens allow. */
  private pump(): void {
    if (!this.client.connected || this.stopping) return;
    const now = Date.now();
    this.tokens = Math.min(this.maxInFlight, this.tokens + ((now - this.tokensAt) / 1000) * this.replayPerSec);
    this.tokensAt = now;
    const room = Math.min(this.maxInFlight - this.inFlight.size, Math.floor(this.tokens));
    if (room <= 0) {
      if (this.inFlight.size < this.maxInFlight) this.schedulePump(1000 / this.replayPerSec);
      return;
    }
    let rows: OutboxRow[];
    // The head of the outbox holds the rows in flight and held; ask for that many more.
    const wanted = this.inFlight.size + this.held.size + room;
    try {
      rows = this.opts.outbox.peek(wanted);
    } catch (err) {
      this.log.warning(`mqtt: outbox unreadable, retrying: ${(err as Error).message}`);
      this.schedulePump(1000);
      return;
    }
    let sent = 0;
    for (const row of rows) {
      if (sent >= room) break;
      if (this.inFlight.has(row.id)) continue;
      const heldUntil = this.held.get(row.id);
      if (heldUntil !== undefined) {
        if (heldUntil > now) continue;
        this.held.delete(row.id);
      }
      this.publishRow(row);
      sent++;
    }
    this.tokens -= sent;
    if (this.held.size > 0) this.schedulePump(1000);
    // Possibly more rows waiting and free slots, but no tokens: continue when tokens come back
    // (when the slots are full instead, the next PUBACK continues).
    if (sent === room && rows.length === wanted && this.inFlight.size < this.maxInFlight) {
      this.schedulePump(1000 / this.replayPerSec);
    }
  }

  private schedulePump(ms: number): void {
    if (this.pumpTimer) return;
    this.pumpTimer = setTimeout(() => {
      this.pumpTimer = undefined;
      this.pump();
    }, Math.max(1, ms));
  }

  private publishRow(row: OutboxRow): void {
    const epoch = this.epoch;
    this.inFlight.add(row.id);
    this.client.publish(this.topics.result, row.payload, { qos: 1, retain: false }, (err) => {
      // A callback from a closed connection: the row is still in the outbox and is replayed.
      if (epoch !== this.epoch) return;
      this.inFlight.delete(row.id);
      if (err) {
        // The broker answered with an MQTT 5 error reason (quota, not authorized...).
        this.log.warning(`mqtt: result ${row.id} refused by the broker (${err.message}); kept in the outbox, retried in 5 s`);
        this.held.set(row.id, Date.now() + 5000);
      } else {
        try {
          this.opts.outbox.ack(row.id);
          this.counters.resultsAcked++;
        } catch (ackErr) {
          // Stays in the outbox, so it is published again: a repeat with the same id.
          this.log.warning(`mqtt: could not remove acknowledged result ${row.id} from the outbox: ${(ackErr as Error).message}`);
        }
      }
      this.pump();
    });
  }
}
