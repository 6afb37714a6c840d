// Command-line parsing shared by the commands: node's parseArgs with messages that name the option.
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { UsageError } from '../errors.ts';

export type Options = NonNullable<ParseArgsConfig['options']>;

export function parse<O extends Options>(argv: string[], options: O, allowPositionals = true) {
  try {
    return parseArgs({ args: argv, options, allowPositionals, strict: true });
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
}

/** An integer option within [min, max], or the default when absent. */
export function intOption(value: string | undefined, name: string, dflt: number, min: number, max: number): number {
  if (value === undefined) return dflt;
  const n = Number(value);
  if (!Number.isInteger(n) || n < min || n > max) {
    throw new UsageError(`--${name} must be an integer from ${min} to ${max}, got '${value}'`);
  }
  return n;
}

/** A finite number option within [min, max], or the default when absent. */
export function numberOption(value: string | undefined, name: string, dflt: number, min: number, max: number): number {
  if (value === undefined) return dflt;
  const n = Number(value);
  if (value.trim() === '' || !Number.isFinite(n) || n < min || n > max) {
    throw new UsageError(`--${name} must be a number from ${min} to ${max}, got '${value}'`);
  }
  return n;
}

/** `--name LO,HI`: a range with min <= LO <= HI <= max (LO > 0 when min is 0); undefined when not given. */
export function rangeOption(value: string | undefined, name: string, min: number, max: number, unit = ''): [number, number] | undefined {
  if (value === undefined) return undefined;
  const m = /^([0-9.]+),([0-9.]+)$/.exec(value);
  const lo = Number(m?.[1]);
  const hi = Number(m?.[2]);
  const loOk = min === 0 ? lo > 0 : lo >= min;
  if (!m || !(loOk && hi >= lo && hi <= max)) {
    throw new UsageError(`--${name} must be LO,HI${unit} with ${min} ${min === 0 ? '<' : '<='} LO <= HI <= ${max}, got '${value}'`);
  }
  return [lo, hi];
}
