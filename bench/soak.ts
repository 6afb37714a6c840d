// Soak: N frames through the daemon (child process) from the simulator at full rate (rate 0: as
// fast as the pipeline takes them) into mosquitto. Every few seconds: the daemon's RSS and open
// file descriptors (/proc/PID), its V8 heap (a sampling module loaded with --import), frames
// delivered, and the latency percentiles of the daemon's own 10 s stats window. Growth is
// measured from the end of the warm-up (the first 20% of the frames) to the end.
//   npx tsx bench/soak.ts [--frames 20000] [--minutes M] [--size 1000] [--every 10] [--model FILE]
// Stops at --frames or after --minutes, whichever comes first, and says how many frames it ran.
import fs from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import mqtt from 'mqtt';
import { startDaemon, stopDaemon, tempDir, until, writeConfig } from '../test/faults/harness.ts';
import { Mosquitto } from '../test/helpers/mosquitto.ts';

const { values: opt } = parseArgs({
  options: {
    frames: { type: 'string', default: '20000' },
    minutes: { type: 'string', default: '600' },
    size: { type: 'string', default: '1000' },
    every: { type: 'string', default: '10' },
    model: { type: 'string' },
  },
});
const FRAMES = Number(opt.frames);
const LIMIT_MS = Number(opt.minutes) * 60_000;
const EVERY_MS = Number(opt.every) * 1000;

interface Sample {
  t: number;
  frames: number;
  rssMb: number;
  heapMb: number;
  externalMb: number;
  fds: number;
  p50: number | null;
  p99: number | null;
  fps: number | null;
}

function procStatusMb(pid: number, field: string): number {
  const m = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) / 1024 : NaN;
}

async function main(): Promise<void> {
  const dir = tempDir('soak');
  const broker = await Mosquitto.start();
  const probe = path.join(dir, 'heap-probe.mjs');
  const heapLog = path.join(dir, 'heap.jsonl');
  // Loaded into the daemon with --import: appends process.memoryUsage() every second.
  fs.writeFileSync(
    probe,
    `import fs from 'node:fs';\nsetInterval(() => fs.appendFileSync(${JSON.stringify(heapLog)}, JSON.stringify(process.memoryUsage()) + '\\n'), 1000).unref();\n`,
  );
  const cfg = writeConfig(dir, broker.url, {
    source: { type: 'simulator', simulator: { rate: 0, size: Number(opt.size), frames: 8, defectRate: 0.2 } },
    model: { intraOpNumThreads: 0, ...(opt.model ? { path: path.resolve(opt.model) } : {}) },
  });
  let delivered = 0;
  const client = mqtt.connect(broker.url, { clientId: `soak-${process.pid}`, protocolVersion: 5 });
  client.on('message', () => delivered++);
  await new Promise<void>((r) => client.once('connect', () => r()));
  await client.subscribeAsync(`${cfg.root}/result`, { qos: 1 });

  const d = startDaemon(cfg.file, {}, ['--import', probe]);
  const pid = d.child.pid!;
  await until('online', () => d.out.some((l) => l.includes('daemon: online')), 180_000, () => d.out.slice(-20).join('\n'));
  const t0 = Date.now();
  const samples: Sample[] = [];
  // The lowest heap of the 1 s samples since the last row: the level after the collector ran, so
  // garbage waiting for the next GC does not pass for growth.
  let heapOffset = 0;
  const lowHeap = () => {
    const text = fs.existsSync(heapLog) ? fs.readFileSync(heapLog, 'utf8') : '';
    const lines = text.slice(heapOffset).trim().split('\n').filter(Boolean);
    heapOffset = text.length;
    const all = lines.map((l) => JSON.parse(l) as NodeJS.MemoryUsage);
    if (all.length === 0) return null;
    return all.reduce((a, b) => (b.heapUsed < a.heapUsed ? b : a));
  };
  console.log(`# soak: simulator ${opt.size}² at full rate -> daemon pid ${pid} -> mosquitto; target ${FRAMES} frames or ${opt.minutes} min`);
  console.log('| t (s) | frames | frames/s | RSS MB | heap used MB (low) | external+buffers MB | fds | e2e p50 ms | e2e p99 ms |');
  console.log('|---|---|---|---|---|---|---|---|---|');
  while (delivered < FRAMES && Date.now() - t0 < LIMIT_MS && d.child.exitCode === null) {
    await new Promise((r) => setTimeout(r, EVERY_MS));
    const heap = lowHeap();
    const stats = d.out.filter((l) => l.includes('stats:')).at(-1) ?? '';
    const m = /([\d.]+) frames\/s.*latency p50 ([\d.]+) ms p99 ([\d.]+) ms/.exec(stats);
    const s: Sample = {
      t: Math.round((Date.now() - t0) / 1000),
      frames: delivered,
      rssMb: procStatusMb(pid, 'VmRSS'),
      heapMb: heap ? heap.heapUsed / 2 ** 20 : NaN,
      externalMb: heap ? (heap.external + heap.arrayBuffers) / 2 ** 20 : NaN,
      fds: fs.readdirSync(`/proc/${pid}/fd`).length,
      fps: m ? Number(m[1]) : null,
      p50: m ? Number(m[2]) : null,
      p99: m ? Number(m[3]) : null,
    };
    samples.push(s);
    console.log(`| ${s.t} | ${s.frames} | ${s.fps ?? '-'} | ${s.rssMb.toFixed(0)} | ${s.heapMb.toFixed(1)} | ${s.externalMb.toFixed(1)} | ${s.fds} | ${s.p50 ?? '-'} | ${s.p99 ?? '-'} |`);
    d.out.splice(0, Math.max(0, d.out.length - 200)); // keep the bench's own memory flat
  }
  const code = (await stopDaemon(d)).code;
  client.end(true);
  await broker.close();

  const warm = samples.filter((s) => s.frames >= Math.min(FRAMES, samples.at(-1)!.frames) * 0.2);
  const first = warm.slice(0, 3);
  const last = warm.slice(-3);
  const mean = (xs: Sample[], k: keyof Sample) => xs.reduce((a, s) => a + (s[k] as number), 0) / xs.length;
  const growth = (k: keyof Sample) => (100 * (mean(last, k) - mean(first, k))) / mean(first, k);
  const rows = fs.existsSync(cfg.db) ? 'see history' : 'none';
  console.log(`\nframes delivered: ${delivered} in ${samples.at(-1)?.t ?? 0} s (${rows}); daemon exit code ${code}`);
  if (warm.length >= 6) {
    console.log(
      `after warm-up (from ${first[0]!.frames} to ${last.at(-1)!.frames} frames): RSS ${mean(first, 'rssMb').toFixed(0)} -> ${mean(last, 'rssMb').toFixed(0)} MB (${growth('rssMb').toFixed(1)}%), ` +
        `heap ${mean(first, 'heapMb').toFixed(1)} -> ${mean(last, 'heapMb').toFixed(1)} MB (${growth('heapMb').toFixed(1)}%), ` +
        `fds ${mean(first, 'fds').toFixed(0)} -> ${mean(last, 'fds').toFixed(0)}; goal < 5% growth: ${Math.max(growth('rssMb'), growth('heapMb')) < 5 ? 'met' : 'NOT met'}`,
    );
  } else {
    console.log('too few samples after warm-up for a growth figure: run longer');
  }
  fs.rmSync(dir, { recursive: true, force: true });
}

await main();
