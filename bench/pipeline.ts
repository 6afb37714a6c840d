// The performance budget (issue 6), CPU provider: `npm run bench` (= npx tsx bench/pipeline.ts).
//  1. In process: per-stage median and p99 ms and end-to-end frames/s (one and two frames in
//     flight) for 16-bit synthetic frames at 1000², 2048² and 3072², judged from PNG (or, --container tiff, uncompressed TIFF) bytes.
//  2. The daemon as a child process (hot folder -> mosquitto) at 2048²: sustained throughput with
//     the folder flooded, compared with the sum of the stage times (the overlap), the bottleneck
//     named; then frames dropped at a steady rate below that throughput: latency from the file's
//     arrival (rename into the hot folder) to the result at a subscriber of the same broker, which
//     is the PUBACK's time within the broker's fan-out.
// Options: --sizes 1000,2048,3072 --frames N (judgements per size) --daemon-frames N
//          --rate R (paced phase, frames/s; default 0.8 x the measured throughput, at most 20)
//          --stable-ms MS (hot folder settle time, default 50; 0 is right for frames renamed into
//          the folder, as here and as the README asks of the detector software)
//          --in-flight N (the daemon's pipeline.inFlight, default 2)
//          --decode-ahead N (the daemon's pipeline.decodeAhead, default 1)
//          --no-daemon --model FILE --spinning (ONNX Runtime's spinning intra-op threads, in process)
//          --flip-test (pipeline.flipTest: the final pass's crop also mirrored top-bottom)
//          --no-polish (pipeline.polish off: no pole polish after the heatmaps)
//          --no-int8-first-pass (pipeline.firstPassInt8 off: the model runs both passes itself, not its int8 variant the first)
//          --intra-op N (model.intraOpNumThreads, default 0: ONNX Runtime's choice, one per core)
//          --container png|tiff (the frames' file format, default png; tiff = uncompressed, as raw detector exports)
//          --png-filters none|sub|adaptive|paeth (the PNG rows' filters: none as encodePng writes, the
//          cheapest to decode; sub on every row as OpenCV writes; libpng's adaptive choice; paeth on every row)
// Env XPOLE_BENCH_NODE_ARGS: node options for the daemon, e.g. '--cpu-prof --cpu-prof-dir=DIR' (profiles of its threads).
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import sharp from 'sharp';
import { decodeFrame, encodePng } from '../src/frame/decode.ts';
import { DEFAULT_PIPELINE_OPTIONS, Pipeline } from '../src/inspect/pipeline.ts';
import { renderFrame } from '../src/synth/frame.ts';
import type { Image, Result } from '../src/types.ts';
import { dropFrame, startDaemon, stopDaemon, Subscriber, tempDir, until, writeConfig } from '../test/faults/harness.ts';
import { Mosquitto, mosquittoAvailable } from '../test/helpers/mosquitto.ts';
import { pngWithFilters } from '../test/helpers/png-writer.ts';

const { values: opt } = parseArgs({
  options: {
    sizes: { type: 'string', default: '1000,2048,3072' },
    frames: { type: 'string', default: '40' },
    'daemon-frames': { type: 'string', default: '120' },
    rate: { type: 'string' },
    'no-daemon': { type: 'boolean', default: false },
    model: { type: 'string' },
    spinning: { type: 'boolean', default: false },
    'flip-test': { type: 'boolean', default: false },
    'no-polish': { type: 'boolean', default: false },
    'no-int8-first-pass': { type: 'boolean', default: false },
    'stable-ms': { type: 'string', default: '50' },
    'in-flight': { type: 'string', default: '2' },
    'decode-ahead': { type: 'string', default: '1' },
    'intra-op': { type: 'string', default: '0' },
    container: { type: 'string', default: 'png' },
    'png-filters': { type: 'string', default: 'none' },
  },
});
/** A count option's value; 0 or junk would leave the tables empty (NaN), so it is refused. */
function count(name: string, hint = ''): number {
  const v = Number(opt[name as keyof typeof opt]);
  if (!Number.isInteger(v) || v < 1) throw new Error(`--${name} must be a whole number of at least 1, got ${String(opt[name as keyof typeof opt])}${hint}`);
  return v;
}
const SIZES = opt.sizes!.split(',').map(Number);
const FRAMES = count('frames');
const DAEMON_FRAMES = count('daemon-frames', ' (--no-daemon skips the daemon run)');
const MODEL = opt.model ?? (fs.existsSync(DEFAULT_PIPELINE_OPTIONS.modelPath) ? DEFAULT_PIPELINE_OPTIONS.modelPath : path.resolve(import.meta.dirname, '../test/fixtures/tiny-model.onnx'));
const INT8_FIRST = !opt['no-int8-first-pass'];
const STAGES = ['decode', 'corners', 'roi', 'preprocess', 'model', 'heatmap', 'refine', 'polish', 'tips', 'verdict', 'total'];

const pct = (v: number[], p: number) => {
  const s = [...v].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))]!;
};
const f1 = (v: number) => (v >= 100 ? v.toFixed(0) : v.toFixed(1));
const ids = (seq: number) => ({ id: `b-${seq}`, seq, ts: new Date().toISOString() });

if (opt.container !== 'png' && opt.container !== 'tiff') throw new Error(`--container must be png or tiff, got ${opt.container}`);
const EXT = opt.container === 'png' ? 'png' : 'tif';
const PNG_FILTERS = ['none', 'sub', 'adaptive', 'paeth'];
if (!PNG_FILTERS.includes(opt['png-filters']!)) throw new Error(`--png-filters must be one of ${PNG_FILTERS.join(', ')}, got ${opt['png-filters']}`);

/** sharp over a 16-bit synthetic frame's samples, to write it in any container. */
const grey16 = (img: Image) => sharp(img.pixels, { raw: { width: img.width, height: img.height, channels: 1 } }).toColourspace('grey16');

/** The frame as a PNG with the given row filters (--png-filters; encodePng writes unfiltered rows). */
async function pngOf(img: Image, filters = opt['png-filters']): Promise<Buffer> {
  switch (filters) {
    case 'sub':
      return pngWithFilters(img, () => 1);
    case 'paeth':
      return pngWithFilters(img, () => 4);
    case 'adaptive':
      return grey16(img).png({ compressionLevel: 3, adaptiveFiltering: true }).toBuffer();
    default:
      return encodePng(img);
  }
}

async function frames(size: number, n: number): Promise<Buffer[]> {
  const out: Buffer[] = [];
  for (let i = 0; i < n; i++) {
    const img = renderFrame({ seed: 500 + i, width: size, height: size, depth: 16, orientation: 'tips-right' }).image;
    out.push(EXT === 'png' ? await pngOf(img) : await grey16(img).tiff({ compression: 'none' }).toBuffer());
  }
  return out;
}

interface SizeFigures {
  size: number;
  stages: Record<string, { p50: number; p99: number }>;
  fps1: number;
  fps2: number;
  verdicts: Record<string, number>;
}

async function inProcess(pipeline: Pipeline, size: number): Promise<SizeFigures> {
  const pngs = await frames(size, 2);
  // A fresh copy each time: the daemon reads every file into a new buffer, so no decoder cache may help.
  const input = (i: number) => ({ frame: `f${i}.${EXT}`, cellId: null, bytes: Buffer.from(pngs[i % pngs.length]!) });
  for (let i = 0; i < 3; i++) await pipeline.judge(input(i), ids(i)); // warm-up
  const timings: Record<string, number[]> = Object.fromEntries(STAGES.map((s) => [s, []]));
  const verdicts: Record<string, number> = {};
  let t0 = performance.now();
  for (let i = 0; i < FRAMES; i++) {
    const r = await pipeline.judge(input(i), ids(i));
    verdicts[r.verdict + (r.verdict === 'ERROR' ? `:${r.reasons[0]}` : '')] = (verdicts[r.verdict] ?? 0) + 1;
    for (const s of STAGES) if (r.timingsMs[s] !== undefined) timings[s]!.push(r.timingsMs[s]!);
  }
  const fps1 = FRAMES / ((performance.now() - t0) / 1000);
  // Two in flight, as the daemon keeps them: decode/corners of one frame overlap the model of the other.
  t0 = performance.now();
  let next = 0;
  const worker = async () => {
    while (next < FRAMES) {
      const i = next++;
      await pipeline.judge(input(i), ids(i));
    }
  };
  await Promise.all([worker(), worker()]);
  const fps2 = FRAMES / ((performance.now() - t0) / 1000);
  const stages: SizeFigures['stages'] = {};
  for (const s of STAGES) if (timings[s]!.length) stages[s] = { p50: pct(timings[s]!, 50), p99: pct(timings[s]!, 99) };
  return { size, stages, fps1, fps2, verdicts };
}

interface DaemonFigures {
  flood: { frames: number; fps: number; seconds: number; /** The daemon's CPU (all threads) per flooded frame. */ cpuMsPerFrame: number };
  paced: { frames: number; rate: number; p50: number; p90: number; p99: number; max: number; keptUp: boolean };
  stats: Record<string, unknown> | null;
  /** Stage medians as the daemon's results report them while flooded (two frames in flight). */
  stages: Record<string, number>;
}

async function daemonRun(size: number, rateOpt: number | undefined): Promise<DaemonFigures> {
  const broker = await Mosquitto.start();
  const dir = tempDir('bench');
  // The history on the same disk as in production (synchronous FULL); info logs only.
  const cfg = writeConfig(dir, broker.url, { model: { path: MODEL, intraOpNumThreads: Number(opt['intra-op']) }, pipeline: { inFlight: Number(opt['in-flight']), decodeAhead: Number(opt['decode-ahead']), flipTest: opt['flip-test'], polish: !opt['no-polish'], firstPassInt8: INT8_FIRST }, source: { hotfolder: { stableMs: Number(opt['stable-ms']), pollMs: 20, afterJudged: 'delete' } } });
  const pngs = await frames(size, 2);
  const sub = await Subscriber.connect(broker.url, cfg.root);
  const received = new Map<string, number>();
  const stageTimes: Record<string, number[]> = {};
  const origPush = sub.results.push.bind(sub.results);
  sub.results.push = (...rs: Result[]) => {
    for (const r of rs) {
      if (received.has(r.frame)) continue;
      received.set(r.frame, performance.now());
      if (r.frame.startsWith('flood-')) for (const [k, v] of Object.entries(r.timingsMs)) (stageTimes[k] ??= []).push(v);
    }
    return origPush(...rs);
  };
  const d = startDaemon(cfg.file, {}, process.env.XPOLE_BENCH_NODE_ARGS ? process.env.XPOLE_BENCH_NODE_ARGS.split(" ") : []);
  try {
    await until('online', () => sub.lastState() === 'online', 120_000, () => d.out.slice(-20).join('\n'));
    // Warm-up: a few frames so that the first ones do not carry session start-up costs.
    for (let i = 0; i < 4; i++) dropFrame(cfg.hot, `warm-${i}.${EXT}`, pngs[i % 2]!);
    await until('warm-up', () => [0, 1, 2, 3].map((i) => `warm-${i}.${EXT}`).every((n) => received.has(n)), 120_000);

    // Flood: every frame is there at once; the daemon pulls them as fast as it can.
    const floodNames = Array.from({ length: DAEMON_FRAMES }, (_, i) => `flood-${String(i).padStart(4, '0')}.${EXT}`);
    const t0 = performance.now();
    const cpu0 = cpuSeconds(d.child.pid!);
    floodNames.forEach((n, i) => dropFrame(cfg.hot, n, pngs[i % 2]!));
    await until('flood judged', () => floodNames.every((n) => received.has(n)), 600_000);
    const cpuMsPerFrame = ((cpuSeconds(d.child.pid!) - cpu0) * 1000) / DAEMON_FRAMES;
    // Steady state: between the 10th and the last result (start-up of the queue excluded).
    const times = floodNames.map((n) => received.get(n)!).sort((a, b) => a - b);
    const fps = (times.length - 10) / ((times.at(-1)! - times[9]!) / 1000);

    // Paced: below the throughput, latency is the pipeline's, not the queue's.
    const rate = rateOpt ?? Math.min(20, Math.max(0.5, Math.floor(fps * 0.8 * 10) / 10));
    const n = Math.max(30, Math.min(DAEMON_FRAMES, Math.round(rate * 20)));
    const arrived = new Map<string, number>();
    const start = performance.now();
    for (let i = 0; i < n; i++) {
      const due = start + (i * 1000) / rate;
      while (performance.now() < due) await new Promise((r) => setTimeout(r, Math.max(0, Math.min(5, due - performance.now()))));
      const name = `paced-${String(i).padStart(4, '0')}.${EXT}`;
      dropFrame(cfg.hot, name, pngs[i % 2]!);
      arrived.set(name, performance.now());
    }
    await until('paced judged', () => [...arrived.keys()].every((k) => received.has(k)), 300_000);
    const lat = [...arrived].map(([k, t]) => received.get(k)! - t);
    const lastLag = lat.at(-1)!;
    // Let the daemon publish one stats window over the paced phase.
    const statsLine = d.out.filter((l) => l.includes('stats:')).at(-1) ?? null;
    return {
      flood: { frames: DAEMON_FRAMES, fps, seconds: (times.at(-1)! - t0) / 1000, cpuMsPerFrame },
      paced: { frames: n, rate, p50: pct(lat, 50), p90: pct(lat, 90), p99: pct(lat, 99), max: Math.max(...lat), keptUp: lastLag < 5 * pct(lat, 50) },
      stats: statsLine ? { line: statsLine } : null,
      stages: Object.fromEntries(Object.entries(stageTimes).map(([k, v]) => [k, pct(v, 50)])),
    };
  } finally {
    await stopDaemon(d);
    await sub.close();
    await broker.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * CPU seconds (user + system, all threads) a process has used, from /proc (Linux). Less sensitive
 * than frames/s to the speed of a shared VM, which drifts up to 2x within an hour.
 */
const CLOCK_TICKS = 100; // USER_HZ: 100 on Linux on x86 and ARM (getconf CLK_TCK)
function cpuSeconds(pid: number): number {
  try {
    // Fields after the command name (which may hold spaces): utime and stime are the 12th and 13th.
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS;
  } catch {
    return Number.NaN;
  }
}

/** Where decode's time goes: the same frame in the containers a detector may write. */
async function decodeBreakdown(size: number): Promise<void> {
  const img = renderFrame({ seed: 500, width: size, height: size, depth: 16, orientation: 'tips-right' }).image;
  const containers: [string, Buffer][] = [
    ['PNG, zlib level 3 (encodePng)', await encodePng(img)],
    ['PNG, zlib level 0 (stored)', await grey16(img).png({ compressionLevel: 0 }).toBuffer()],
    // Other encoders filter their rows; undoing Sub, Average or Paeth is a serial pass over every byte.
    ["PNG, libpng's adaptive filters (Sub, Up, Average rows)", await pngOf(img, 'adaptive')],
    ['PNG, Sub on every row (as OpenCV writes)', await pngOf(img, 'sub')],
    ['PNG, Paeth on every row', await pngOf(img, 'paeth')],
    ['TIFF, uncompressed', await grey16(img).tiff({ compression: 'none' }).toBuffer()],
    ['TIFF, LZW', await grey16(img).tiff({ compression: 'lzw' }).toBuffer()],
  ];
  console.log(`\n## decodeFrame at ${size}² by container (ms, median / min of 15)\n`);
  console.log('| container | bytes | median | min |');
  console.log('|---|---|---|---|');
  for (const [name, bytes] of containers) {
    const t: number[] = [];
    for (let i = 0; i < 15; i++) {
      const copy = Buffer.from(bytes);
      const t0 = performance.now();
      await decodeFrame(copy);
      t.push(performance.now() - t0);
    }
    console.log(`| ${name} | ${(bytes.length / 2 ** 20).toFixed(1)} MB | ${f1(pct(t, 50))} | ${f1(Math.min(...t))} |`);
  }
}

async function main(): Promise<void> {
  const loadavg = os.loadavg().map((v) => v.toFixed(1)).join(' ');
  console.log(`# xpole pipeline bench: CPU provider, ${os.cpus().length} cores, load average ${loadavg}`);
  console.log(`# model ${path.relative(process.cwd(), MODEL)}; ${FRAMES} judgements per size from ${EXT === "png" ? `PNG (${opt['png-filters']} row filters)` : "uncompressed TIFF"} bytes (16-bit synthetic frames)`);
  const pipeline = await Pipeline.load({ modelPath: MODEL, providers: ['cpu'], intraOpNumThreads: Number(opt['intra-op']), spinning: opt.spinning, flipTest: opt['flip-test'], polish: !opt['no-polish'], ...(INT8_FIRST ? {} : { firstPassModelPath: null }) });
  console.log(`# intra-op threads ${opt.spinning ? 'spin' : 'do not spin'} while idle; flip test ${opt['flip-test'] ? 'on' : 'off'}; polish ${opt['no-polish'] ? 'off' : 'on'}; int8 first pass ${INT8_FIRST ? 'on (where the model has a variant)' : 'off'}`);
  const figures: SizeFigures[] = [];
  for (const size of SIZES) {
    figures.push(await inProcess(pipeline, size));
    const f = figures.at(-1)!;
    console.log(`${size}²: done (${JSON.stringify(f.verdicts)})`);
  }
  await pipeline.close();

  console.log('\n## Per stage, ms (median / p99), one frame at a time\n');
  const cols = STAGES.filter((s) => figures.some((f) => f.stages[s]));
  console.log(`| frame | ${cols.join(' | ')} | frames/s (1 in flight) | frames/s (2 in flight) |`);
  console.log(`|---|${cols.map(() => '---').join('|')}|---|---|`);
  for (const f of figures) {
    const cells = cols.map((s) => (f.stages[s] ? `${f1(f.stages[s]!.p50)} / ${f1(f.stages[s]!.p99)}` : '-'));
    console.log(`| ${f.size}² | ${cells.join(' | ')} | ${f.fps1.toFixed(1)} | ${f.fps2.toFixed(1)} |`);
  }
  for (const f of figures) {
    const stages = cols.filter((s) => s !== 'total' && f.stages[s]);
    const sum = stages.reduce((a, s) => a + f.stages[s]!.p50, 0);
    const [top] = stages.sort((a, b) => f.stages[b]!.p50 - f.stages[a]!.p50);
    console.log(`${f.size}²: sum of stage medians ${f1(sum)} ms (${(1000 / sum).toFixed(1)} frames/s if nothing overlapped); biggest stage ${top} ${f1(f.stages[top!]!.p50)} ms = ${Math.round((100 * f.stages[top!]!.p50) / sum)}%`);
  }

  await decodeBreakdown(SIZES.includes(2048) ? 2048 : SIZES[0]!);

  if (opt['no-daemon'] || !mosquittoAvailable()) return;
  const size = SIZES.includes(2048) ? 2048 : SIZES[0]!;
  const d = await daemonRun(size, opt.rate ? Number(opt.rate) : undefined);
  const f = figures.find((x) => x.size === size)!;
  const sum = Object.entries(f.stages).filter(([s]) => s !== 'total').reduce((a, [, v]) => a + v.p50, 0);
  console.log(`\n## Daemon at ${size}² (hot folder -> pipeline, ${opt['in-flight']} analysed at once and ${opt['decode-ahead']} decoding ahead -> history -> mosquitto)\n`);
  console.log(`sustained, folder flooded with ${d.flood.frames} frames: ${d.flood.fps.toFixed(1)} frames/s (${(1000 / d.flood.fps).toFixed(0)} ms a frame) vs sum of stage medians ${f1(sum)} ms (${(1000 / sum).toFixed(1)} frames/s): overlap gain x${((d.flood.fps * sum) / 1000).toFixed(2)}`);
  console.log(`paced at ${d.paced.rate} frames/s, ${d.paced.frames} frames: file arrival -> result at a subscriber (PUBACK): p50 ${f1(d.paced.p50)} ms, p90 ${f1(d.paced.p90)} ms, p99 ${f1(d.paced.p99)} ms, max ${f1(d.paced.max)} ms; ${d.paced.keptUp ? 'kept up' : 'fell behind (latency grew over the run)'}`);
  if (d.stats) console.log(`daemon's own last stats line: ${String(d.stats.line)}`);
  console.log(`stage medians inside the flooded daemon vs one at a time in process, ms (the daemon's total includes slotWait, the wait for an analysis slot):`);
  for (const s of ['slotWait', ...STAGES]) if (d.stages[s] !== undefined) console.log(`  ${s.padEnd(10)} ${f1(d.stages[s]!).padStart(6)} vs ${f.stages[s] ? f1(f.stages[s]!.p50) : '-'}`);
  const cores = os.cpus().length || 1;
  console.log(`daemon CPU a flooded frame (user + system, all its threads): ${f1(d.flood.cpuMsPerFrame)} ms; ${cores} cores allow at most ${((cores * 1000) / d.flood.cpuMsPerFrame).toFixed(1)} frames/s`);
  if (size === 2048) console.log(`goals: >= 20 frames/s sustained at 2048²: ${d.flood.fps >= 20 ? 'met' : 'NOT met'}; p99 <= 150 ms: ${d.paced.p99 <= 150 ? 'met' : 'NOT met'}`);
  else console.log(`goals: judged at 2048² only (this daemon run was at ${size}²)`);
}

await main();
