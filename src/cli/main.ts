// The `xpole` command: dispatches to one module per command. Exit 0 done, 2 usage/config, 1 failure.
import { UsageError } from '../errors.ts';

type Command = { run(argv: string[]): Promise<number> };

const COMMANDS: Record<string, () => Promise<Command>> = {
  run: () => import('./run.ts'),
  inspect: () => import('./inspect.ts'),
  eval: () => import('./eval.ts'),
  corners: () => import('./corners.ts'),
  synth: () => import('./synth.ts'),
  history: () => import('./history.ts'),
};

const USAGE = `usage: xpole <command> [options]
  run [--config FILE]                                   the inspection daemon
  inspect FILE... [--config FILE] [--orientation O] [--json] [--overlay DIR]
  eval --dataset DIR [--corners N] [--no-refine] [--no-sheet-order] [--decode argmax|dark] [--json]
  corners FILE [--threshold T] [--max N] [--json]
  synth --out DIR --count N [--seed S] [--defect-rate R] | synth --preview FILE.png
  history export [--since T] [--until T] [--format csv|jsonl] | history stats | history backup FILE`;

export async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    process.stdout.write(USAGE + '\n');
    return name === undefined ? 2 : 0;
  }
  const load = COMMANDS[name];
  if (!load) {
    process.stderr.write(`xpole: unknown command '${name}'\n${USAGE}\n`);
    return 2;
  }
  try {
    return await (await load()).run(rest);
  } catch (err) {
    if (err instanceof UsageError) {
      process.stderr.write(`xpole ${name}: ${err.message}\n`);
      return 2;
    }
    process.stderr.write(`xpole ${name}: ${(err as Error).stack ?? String(err)}\n`);
    return 1;
  }
}
