// `xpole inspect FILE... [--config FILE] [--orientation O] [--json] [--overlay DIR]`: judges
// frames once and prints SPEC's result per frame; --overlay writes an annotated PNG per frame.
import { mkdirSync, writeFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { loadConfig, type Config } from '../config/index.ts';
import { pipelineOptionsFromConfig as optionsFromConfig } from '../config/pipeline.ts';
import { UsageError } from '../errors.ts';
import { renderOverlay } from '../inspect/overlay.ts';
import { DEFAULT_PIPELINE_OPTIONS, Pipeline, type PipelineOptions } from '../inspect/pipeline.ts';
import { ORIENTATIONS, type Orientation, type Result } from '../types.ts';
import { ModelLoadError, type Logger } from '../vision/model.ts';
import { parse } from './args.ts';

/** The pipeline options a configuration asks for, on top of the pipeline's defaults. */
export function pipelineOptionsFromConfig(config: Config, log?: Logger): PipelineOptions {
  return { ...DEFAULT_PIPELINE_OPTIONS, ...optionsFromConfig(config, log) };
}

export function orientationOption(value: string | undefined): Orientation | undefined {
  if (value === undefined) return undefined;
  if (!ORIENTATIONS.includes(value as Orientation)) {
    throw new UsageError(`--orientation must be one of ${ORIENTATIONS.join(', ')}, got '${value}'`);
  }
  return value as Orientation;
}

/** Warnings and errors of the model loader go to stderr; the results own stdout. */
export const stderrLog: Logger = (level, message) => {
  if (level === 'warning' || level === 'error') process.stderr.write(`xpole: ${level}: ${message}\n`);
};

/** The pipeline, or null once the reason the model cannot be used is on stderr (the command exits 1). */
export async function loadPipeline(options: PipelineOptions, command: string): Promise<Pipeline | null> {
  try {
    return await Pipeline.load(options);
  } catch (err) {
    if (!(err instanceof ModelLoadError)) throw err;
    process.stderr.write(`xpole ${command}: ${err.message}\n`);
    return null;
  }
}

export function summaryLine(r: Result): string {
  const oh = r.overhangMm.filter((v): v is number => v !== null);
  const range = oh.length ? ` overhang ${Math.min(...oh).toFixed(2)}..${Math.max(...oh).toFixed(2)} mm` : '';
  const refined = r.poles.filter((p) => p.source === 'refined').length;
  const why = r.reasons.length ? ` [${r.reasons.join(', ')}]` : '';
  const err = r.error ? `: ${r.error}` : '';
  const poles = r.poles.length ? ` poles ${r.poles.length} (${refined} refined)` : '';
  return `${r.frame}: ${r.verdict}${why}${range}${poles} ${r.timingsMs.total ?? 0} ms${err}`;
}

export async function run(argv: string[]): Promise<number> {
  const { values, positionals } = parse(argv, {
    config: { type: 'string' },
    orientation: { type: 'string' },
    json: { type: 'boolean', default: false },
    overlay: { type: 'string' },
  });
  if (positionals.length === 0) throw new UsageError('inspect needs at least one FILE');
  const config = loadConfig(values.config);
  const options = pipelineOptionsFromConfig(config, stderrLog);
  options.orientation = orientationOption(values.orientation) ?? options.orientation;
  if (values.overlay) mkdirSync(values.overlay, { recursive: true });

  const pipeline = await loadPipeline(options, 'inspect');
  if (!pipeline) return 1;
  let failed = 0;
  try {
    for (const [i, file] of positionals.entries()) {
      const ids = { id: `inspect-${i + 1}`, seq: i + 1, ts: new Date().toISOString() };
      let bytes: Uint8Array;
      try {
        bytes = await readFile(file);
      } catch (err) {
        process.stderr.write(`xpole inspect: ${file}: cannot read: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}\n`);
        failed++;
        continue;
      }
      const judged = await pipeline.judgeDetailed({ frame: file, cellId: null, bytes }, ids);
      const r = judged.result;
      process.stdout.write((values.json ? JSON.stringify(r) : summaryLine(r)) + '\n');
      if (values.overlay) {
        const png = await renderOverlay({ ...judged, minConfidence: options.recipe.minConfidence });
        if (png) writeFileSync(path.join(values.overlay, `${path.parse(file).name}.overlay.png`), png);
      }
    }
  } finally {
    await pipeline.close();
  }
  return failed ? 1 : 0;
}
