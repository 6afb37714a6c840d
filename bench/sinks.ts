// Figures for the sinks: history record cost (fsync policy), record -> PUBACK latency against a
// local mosquitto, outbox replay rate, export and backup speed. `npx tsx bench/sinks.ts`
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { History, HistoryReader } from '../src/sinks/history.ts';
import { MqttSink } from '../src/sinks/mqtt.ts';
import { Mosquitto, mosquittoAvailable } from '../test/helpers/mosquitto.ts';
import { makeResult } from '../test/helpers/results.ts';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'xpole-bench-sinks-'));
const STATUS = { version: 'bench', model: 'none', provider: 'cpu' };

function pct(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

/** Polls every millisecond (not setImmediate: a busy loop would steal the broker's CPU). */
async function waitFor(cond: () => boolean): Promise<void> {
  while (!cond()) await new Promise((r) => setTimeout(r, 1));
}

function recordCost(sync: 'FULL' | 'NORMAL', n: number): void {
  const h = History.open(path.join(tmp, `record-${sync}.db`), { synchronous: sync });
  const t0 = performance.now();
  for (let i = 1; i <= n; i++) h.record(makeResult(i));
  const ms = (performance.now() - t0) / n;
  h.close();
  console.log(`history.record, synchronous=${sync}: ${ms.toFixed(3)} ms/result (${Math.round(1000 / ms)}/s), ${n} results`);
}

/** record -> PUBACK, one result at a time at line pace (synchronous FULL, as in production). */
async function pubackLatency(label: string, url: string, protocolVersion: 4 | 5): Promise<void> {
  const hl = History.open(path.join(tmp, `latency-${label.replace(/\W+/g, '-')}.db`));
  const sink = new MqttSink({ url, protocolVersion, root: 'bench/l/s', clientId: 'bench-latency', status: STATUS, outbox: hl.outbox });
  sink.start();
  await waitFor(() => sink.connected);
  const lat: number[] = [];
  for (let i = 1; i <= 200; i++) {
    const acked = sink.stats().resultsAcked;
    const t = performance.now();
    const r = makeResult(i);
    hl.record(r);
    sink.onResult(r);
    await waitFor(() => sink.stats().resultsAcked > acked);
    lat.push(performance.now() - t);
    await new Promise((res) => setTimeout(res, 10));
  }
  lat.sort((a, b) => a - b);
  console.log(`record -> PUBACK (${label}, QoS 1): p50 ${pct(lat, 50).toFixed(2)} ms, p99 ${pct(lat, 99).toFixed(2)} ms, max ${lat.at(-1)!.toFixed(2)} ms over ${lat.length}`);
  await sink.stop();
  hl.close();
}

async function main(): Promise<void> {
  console.log(`machine: ${os.cpus().length} cores, ${os.cpus()[0]?.model ?? '?'}, node ${process.version}`);
  recordCost("FULL", 300);
  recordCost("NORMAL", 2000);

  // Export and backup on a 20,000-row history (~40 MB).
  const big = path.join(tmp, 'big.db');
  const h = History.open(big, { synchronous: 'NORMAL' });
  for (let i = 1; i <= 20_000; i++) h.record(makeResult(i));
  for (;;) {
    const rows = h.outbox.peek(5000);
    if (rows.length === 0) break;
    for (const r of rows) h.outbox.ack(r.id);
  }
  h.close();
  const reader = HistoryReader.openReadOnly(big);
  let t0 = performance.now();
  let n = 0;
  for (const r of reader.export()) n += JSON.stringify(r).length > 0 ? 1 : 0;
  console.log(`export: ${n} rows in ${(performance.now() - t0).toFixed(0)} ms (${Math.round(n / ((performance.now() - t0) / 1000))} rows/s), file ${(fs.statSync(big).size / 1e6).toFixed(1)} MB`);
  t0 = performance.now();
  await reader.backup(path.join(tmp, 'big-backup.db'));
  console.log(`backup: ${(performance.now() - t0).toFixed(0)} ms for ${(fs.statSync(big).size / 1e6).toFixed(1)} MB`);
  reader.close();

  if (!mosquittoAvailable()) {
    console.log('mosquitto not installed: MQTT figures skipped');
    return;
  }
  const broker = await Mosquitto.start();
  try {
    await pubackLatency('local mosquitto, set_tcp_nodelay true, MQTT 5', broker.url, 5);
    // The embedded default's broker (aedes speaks MQTT 3.1.1 only).
    const { default: aedes } = await import('aedes');
    const embedded = aedes.createBroker();
    const server = net.createServer(embedded.handle);
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    await pubackLatency('aedes, MQTT 3.1.1', `mqtt://127.0.0.1:${(server.address() as net.AddressInfo).port}`, 4);
    await new Promise<void>((r) => embedded.close(() => server.close(() => r())));

    // Backlog replay after an outage: default pace vs unthrottled.
    for (const [label, perSec] of [['default 200/s', 200], ['unthrottled', 1e6]] as const) {
      const hb = History.open(path.join(tmp, `replay-${perSec}.db`), { synchronous: 'NORMAL' });
      const count = perSec === 200 ? 1000 : 5000;
      for (let i = 1; i <= count; i++) hb.record(makeResult(i));
      const s = new MqttSink({ url: broker.url, root: 'bench/l/s', clientId: `bench-replay-${perSec}`, replayPerSec: perSec, status: STATUS, outbox: hb.outbox });
      const t = performance.now();
      s.start();
      await waitFor(() => hb.outbox.depth() === 0);
      const sec = (performance.now() - t) / 1000;
      console.log(`outbox replay (${label}, 32 in flight): ${count} results in ${sec.toFixed(2)} s = ${Math.round(count / sec)}/s`);
      await s.stop();
      hb.close();
    }
  } finally {
    await broker.close();
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}

await main();
