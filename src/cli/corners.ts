// `xpole corners FILE [--threshold T] [--max N] [--json]`: the oFAST corners of one frame (SPEC "Command line").
import { readFile } from 'node:fs/promises';
import { FrameError, UsageError } from '../errors.ts';
import { decodeFrame } from '../frame/decode.ts';
import { defaultThreshold, detectCornersAsync } from '../vision/corners.ts';
import { intOption, parse } from './args.ts';

export async function run(argv: string[]): Promise<number> {
  const { values, positionals } = parse(argv, {
    threshold: { type: 'string' },
    max: { type: 'string' },
    json: { type: 'boolean', default: false },
  });
  if (positionals.length !== 1) throw new UsageError(`expects exactly one FILE, got ${positionals.length}`);
  const file = positionals[0]!;
  let bytes: Buffer;
  try {
    bytes = await readFile(file);
  } catch (err) {
    process.stderr.write(`xpole corners: cannot read ${file}: ${(err as Error).message}\n`);
    return 1;
  }
  let img;
  try {
    img = await decodeFrame(bytes);
  } catch (err) {
    if (!(err instanceof FrameError)) throw err;
    process.stderr.write(`xpole corners: ${file}: ${err.reason}: ${err.message}\n`);
    return 1;
  }
  // The threshold is in the frame's own units; the range depends on its depth, known only now.
  const threshold = intOption(values.threshold, 'threshold', defaultThreshold(img.depth), 0, img.depth === 8 ? 255 : 65535);
  const max = values.max === undefined ? undefined : intOption(values.max, 'max', 0, 1, 2 ** 30);
  const c = await detectCornersAsync(img, { threshold, maxCorners: max });

  const lines: string[] = [];
  if (values.json) {
    for (let i = 0; i < c.count; i++) {
      lines.push(JSON.stringify({ x: c.x[i], y: c.y[i], score: c.score[i], harris: c.harris[i], angle: c.angle[i] }));
    }
  } else {
    lines.push(`${file}: ${img.width}x${img.height} ${img.depth}-bit, threshold ${threshold}: ${c.count} corners`);
    lines.push('x\ty\tscore\tharris\tangle');
    for (let i = 0; i < c.count; i++) {
      lines.push(`${c.x[i]}\t${c.y[i]}\t${c.score[i]}\t${c.harris[i]!.toExponential(4)}\t${c.angle[i]!.toFixed(2)}`);
    }
  }
  if (lines.length > 0) process.stdout.write(lines.join('\n') + '\n');
  return 0;
}
