// The daemon's log: one line per message on stdout with a `<N>` syslog priority prefix, which
// journald turns into the entry's priority (`journalctl -u xpole -p warning` shows warnings).
// Secrets registered with `redact` are replaced before anything is written.

export type LogLevel = 'debug' | 'info' | 'warning' | 'err';
export const LOG_LEVELS: readonly LogLevel[] = ['debug', 'info', 'warning', 'err'];

/** syslog(3) priorities as journald reads them from `<N>` prefixes. */
const PRIORITY: Record<LogLevel, number> = { debug: 7, info: 6, warning: 4, err: 3 };

export interface Logger {
  level: LogLevel;
  debug(msg: string): void;
  info(msg: string): void;
  warning(msg: string): void;
  err(msg: string): void;
  /** Never write this string (a password, a token): it is replaced by `***`. */
  redact(secret: string): void;
}

export function createLogger(level: LogLevel = 'info', write: (line: string) => void = defaultWrite): Logger {
  const secrets: string[] = [];
  const emit = (at: LogLevel, msg: string) => {
    if (PRIORITY[at] > PRIORITY[logger.level]) return;
    let text = msg;
    for (const s of secrets) text = text.split(s).join('***');
    // One journal entry per line: a multi-line message (a stack) keeps its priority on every line.
    const out = text
      .split('\n')
      .map((line) => `<${PRIORITY[at]}>${line}`)
      .join('\n');
    write(out + '\n');
  };
  const logger: Logger = {
    level,
    debug: (m) => emit('debug', m),
    info: (m) => emit('info', m),
    warning: (m) => emit('warning', m),
    err: (m) => emit('err', m),
    redact: (s) => {
      if (s.length > 0 && !secrets.includes(s)) secrets.push(s);
    },
  };
  return logger;
}

function defaultWrite(line: string): void {
  process.stdout.write(line);
}
