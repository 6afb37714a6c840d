// `xpole run [--config FILE]`: the daemon. Without a file, the embedded default: the simulated
// detector, an embedded MQTT broker on 127.0.0.1:1883 and the history in ./var/history.db.
import fs from 'node:fs';
import { createRequire } from 'node:module';
import { recipeOf, topicRoot, mqttClientId, loadConfig, type Config } from '../config/index.ts';
import { pipelineOptionsFromConfig } from '../config/pipeline.ts';
import { Daemon, startEmbeddedBroker } from '../daemon.ts';
import { UsageError } from '../errors.ts';
import type { Pipeline } from '../inspect/pipeline.ts';
import { createLogger, type Logger } from '../log.ts';
import { History, HistoryUnavailableError } from '../sinks/history.ts';
import { MqttSink } from '../sinks/mqtt.ts';
import { HotFolder } from '../sources/hotfolder.ts';
import { Simulator } from '../sources/simulator.ts';
import type { Source } from '../sources/source.ts';
import { parse } from './args.ts';

// The native addon and ONNX Runtime load only after the configuration is valid, so that a bad
// file is reported (exit 2) even where they cannot load.
const native = () =>
  Promise.all([import('../inspect/pipeline.ts'), import('../notify.ts'), import('../vision/model.ts')]);

const EMBEDDED_HOST = '127.0.0.1';
const EMBEDDED_PORT = 1883;

export async function run(argv: string[]): Promise<number> {
  const { values } = parse(argv, { config: { type: 'string' } }, false);
  const config = loadConfig(values.config);
  const log = createLogger(config.log.level);
  const [{ Pipeline }, { notify: sdNotify }, { ModelLoadError }] = await native();
  const notify = systemdNotifier(log, sdNotify);
  if (config.mqtt.password !== null) log.redact(config.mqtt.password);
  const version = (createRequire(import.meta.url)('../../package.json') as { version: string }).version;
  log.info(`xpole ${version}: ${values.config ? `config ${values.config}` : 'embedded default (no --config)'}`);

  // A second signal while stopping exits at once.
  let stopRequested: (() => void) | null = null;
  let signals = 0;
  const onSignal = (sig: NodeJS.Signals) => {
    signals++;
    if (signals > 1) {
      log.warning(`${sig} again: exiting at once`);
      process.exit(1);
    }
    log.info(`${sig}: stopping`);
    stopRequested?.();
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
  const stopped = new Promise<void>((resolve) => (stopRequested = resolve));
  const isStopping = () => signals > 0;

  const url = config.mqtt.url ?? `mqtt://${EMBEDDED_HOST}:${EMBEDDED_PORT}`;
  const broker = config.mqtt.url === null ? await embeddedBroker(log) : null;
  const root = topicRoot(config);
  if (broker) {
    log.info(`embedded MQTT broker on ${EMBEDDED_HOST}:${EMBEDDED_PORT}; watch the results with:`);
    log.info(`  mosquitto_sub -h ${EMBEDDED_HOST} -p ${EMBEDDED_PORT} -t 'xpole/#' -v`);
  }

  let pipeline: Pipeline | null = null;
  let history: History | null = null;
  try {
    try {
      pipeline = await loadPipeline(Pipeline, config, log);
    } catch (err) {
      if (!(err instanceof ModelLoadError)) throw err;
      log.err(`model: ${err.message}`);
      return 1;
    }
    history = await openHistory(config, log, notify, isStopping);
    if (history === null) return 0;
    const source = makeSource(config, log);
    await source.open();

    let daemon: Daemon | null = null;
    const sink = new MqttSink({
      url,
      root,
      clientId: mqttClientId(config),
      // aedes speaks MQTT 3.1.1 only (so verdicts carry no expiry on the embedded broker).
      protocolVersion: broker ? 4 : config.mqtt.protocolVersion,
      username: config.mqtt.username ?? undefined,
      password: config.mqtt.password ?? undefined,
      tls: {
        ca: config.mqtt.tls.ca ?? undefined,
        cert: config.mqtt.tls.cert ?? undefined,
        key: config.mqtt.tls.key ?? undefined,
        rejectUnauthorized: config.mqtt.tls.rejectUnauthorized,
      },
      verdictExpirySec: config.mqtt.verdictExpirySec,
      replayPerSec: config.mqtt.replayRate,
      status: { version, model: pipeline.model.name, provider: pipeline.model.provider },
      stats: () => daemon?.stats() ?? {},
      outbox: history.outbox,
      log,
    });
    const h = history;
    daemon = new Daemon({
      station: config.station.station,
      version,
      log,
      source,
      pipeline,
      history: h,
      publisher: sink,
      notify,
      // The pipeline analyses pipeline.inFlight of them at once (analysisSlots); the others decode meanwhile.
      inFlight: config.pipeline.inFlight + config.pipeline.decodeAhead,
      queueDepth: config.queue.depth,
      stopTimeoutSec: config.stopTimeoutSec,
      retention: () => enforceRetention(h, log),
      watchdogUsec: watchdogUsec(process.env),
    });
    enforceRetention(h, log);
    if (!isStopping()) {
      daemon.start();
      await stopped;
    }
    // A stop that hangs (a stuck native call) must not outlive the stop timeout.
    const guard = setTimeout(() => {
      log.err(`not stopped within stopTimeoutSec + 5 s: exiting`);
      process.exit(1);
    }, (config.stopTimeoutSec + 5) * 1000);
    guard.unref();
    pipeline = null; // closed by the daemon
    history = null;
    return await daemon.stop();
  } finally {
    await pipeline?.close();
    history?.close();
    await broker?.close();
    process.off('SIGTERM', onSignal);
    process.off('SIGINT', onSignal);
  }
}

async function embeddedBroker(log: Logger): Promise<{ close(): Promise<void> }> {
  try {
    return await startEmbeddedBroker(EMBEDDED_HOST, EMBEDDED_PORT);
  } catch (err) {
    log.err(`cannot start the embedded MQTT broker on ${EMBEDDED_HOST}:${EMBEDDED_PORT}: ${(err as Error).message}`);
    throw new Error(`the embedded broker needs ${EMBEDDED_HOST}:${EMBEDDED_PORT} (is another broker running? set mqtt.url to use it)`);
  }
}

function loadPipeline(P: typeof Pipeline, config: Config, log: Logger): Promise<Pipeline> {
  if (!fs.existsSync(config.model.path)) throw new UsageError(`model.path: no such file ${config.model.path}`);
  if (config.pipeline.polish && !fs.existsSync(config.model.polishPath)) {
    throw new UsageError(`model.polishPath: no such file ${config.model.polishPath} (or set pipeline.polish: false)`);
  }
  const logAt = { debug: log.debug, info: log.info, warning: log.warning, error: log.err };
  log.info(`loading model ${config.model.path} (providers ${config.model.providers.join(' -> ')})`);
  return P.load(pipelineOptionsFromConfig(config, (level, msg) => logAt[level](msg)));
}

/** The history; while its disk refuses (full, read-only) the daemon waits "degraded" and retries. */
async function openHistory(config: Config, log: Logger, notify: (state: string) => boolean, isStopping: () => boolean): Promise<History | null> {
  const options = { retention: { maxAgeDays: config.history.retentionDays, maxSizeMb: config.history.maxSizeMb } };
  for (let delay = 1000; ; delay = Math.min(30_000, delay * 2)) {
    try {
      const h = History.open(config.history.path, options);
      log.info(`history ${config.history.path}: last seq ${h.lastSeq()}, ${h.outbox.depth()} result(s) waiting in the outbox`);
      return h;
    } catch (err) {
      if (!(err instanceof HistoryUnavailableError)) throw err;
      log.err(`degraded: ${err.message}; retrying in ${delay / 1000} s`);
      notify(`STATUS=degraded: history ${config.history.path} unavailable (${err.code})`);
      for (let t = 0; t < delay && !isStopping(); t += 100) await new Promise((r) => setTimeout(r, 100));
      if (isStopping()) return null;
    }
  }
}

/** The watchdog period systemd asks for, as sd_watchdog_enabled(3): 0 when it is meant for another process. */
function watchdogUsec(env: NodeJS.ProcessEnv): number {
  const usec = Number(env.WATCHDOG_USEC ?? 0);
  if (!(usec > 0)) return 0;
  if (env.WATCHDOG_PID && Number(env.WATCHDOG_PID) !== process.pid) return 0;
  return usec;
}

/** sd_notify that never throws: a notification systemd cannot take is a warning (once), not a crash. */
function systemdNotifier(log: Logger, sdNotify: (state: string) => boolean): (state: string) => boolean {
  let warned = false;
  return (state) => {
    try {
      return sdNotify(state);
    } catch (err) {
      if (!warned) log.warning(`sd_notify: ${(err as Error).message}`);
      warned = true;
      return false;
    }
  };
}

function enforceRetention(history: History, log: Logger): void {
  try {
    const r = history.enforceRetention();
    if (r.deletedByAge + r.deletedBySize > 0) {
      log.info(`history retention: ${r.deletedByAge} row(s) by age, ${r.deletedBySize} by size; file ${Math.round(r.fileBytes / 1e6)} MB`);
    }
  } catch (err) {
    log.warning(`history retention skipped: ${(err as Error).message}`);
  }
}

function makeSource(config: Config, log: Logger): Source {
  const s = config.source;
  if (s.type === 'hotfolder') return new HotFolder(s.hotfolder, log);
  return new Simulator({ ...s.simulator, orientation: config.orientation, recipe: recipeOf(config) }, log);
}
