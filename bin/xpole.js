#!/usr/bin/env node
// Entry point: runs the TypeScript sources through tsx so that a fresh clone needs no build step.
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { register } from 'tsx/esm/api';

// onnxruntime overflows the main thread's stack while it creates a session when the command line
// is long (about 25 KB: `xpole inspect dir/*.png` over a thousand frames). Such a command line is
// handed to a child process through the environment, which does not hit it.
const LONG_COMMAND_LINE = 8192;
let args = process.argv.slice(2);
if (process.env.XPOLE_ARGV !== undefined) {
  args = JSON.parse(process.env.XPOLE_ARGV);
  delete process.env.XPOLE_ARGV;
} else if (args.reduce((n, a) => n + a.length + 1, 0) > LONG_COMMAND_LINE) {
  const child = spawnSync(process.execPath, [...process.execArgv, fileURLToPath(import.meta.url)], {
    stdio: 'inherit',
    env: { ...process.env, XPOLE_ARGV: JSON.stringify(args) },
  });
  process.exit(child.status ?? 1);
}

register();
const { main } = await import('../src/cli/main.ts');
process.exitCode = await main(args);
