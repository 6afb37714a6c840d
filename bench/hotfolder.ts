// The hot folder draining a backlog (frames that piled up while xpole was stopped): how long
// handing out N frames takes with M waiting. No decoding: the source's own cost.
//   npx tsx bench/hotfolder.ts [--waiting 5000] [--take 1000]
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { intOption, parse } from '../src/cli/args.ts';
import { createLogger } from '../src/log.ts';
import { HotFolder } from '../src/sources/hotfolder.ts';

const { values } = parse(process.argv.slice(2), { waiting: { type: 'string' }, take: { type: 'string' } });
const waiting = intOption(values.waiting, '--waiting', 5000, 1, 1_000_000);
const take = Math.min(waiting, intOption(values.take, '--take', 1000, 1, 1_000_000));
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'xpole-bench-hf-'));
try {
  for (let i = 0; i < waiting; i++) fs.writeFileSync(path.join(dir, `f${String(i).padStart(7, '0')}.png`), 'x');
  const hf = new HotFolder(
    { dir, pattern: '*.png', cellIdRegex: null, sidecar: false, afterJudged: 'delete', retentionDays: 0, stableMs: 0, pollMs: 20, maxFileMb: 64 },
    createLogger('err', () => {}),
  );
  await hf.open();
  const t = performance.now();
  for (let i = 0; i < take; i++) {
    const f = await hf.next();
    await f!.ack('PASS');
  }
  const s = (performance.now() - t) / 1000;
  console.log(`${take} frames handed out from a backlog of ${waiting}: ${s.toFixed(2)} s (${(take / s).toFixed(0)} frames/s)`);
  hf.stop();
} finally {
  fs.rmSync(dir, { recursive: true, force: true });
}
