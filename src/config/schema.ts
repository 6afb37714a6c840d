// The configuration's shape: every option, its type, range and default. The defaults are the
// embedded default (`xpole run` with no file): simulator, embedded broker, ./var/history.db.
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { LOG_LEVELS, type LogLevel } from '../log.ts';
import type { HotFolderOptions } from '../sources/hotfolder.ts';
import { ORIENTATIONS, type Orientation } from '../types.ts';

export type Provider = 'tensorrt' | 'cuda' | 'cpu';
export const PROVIDERS: readonly Provider[] = ['tensorrt', 'cuda', 'cpu'];

/** The package root: relative defaults that ship with xpole (the model) resolve against it. */
export const PACKAGE_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

export interface Config {
  station: { line: string; station: string; clientId: string | null };
  recipe: {
    name: string;
    anodes: number;
    pixelPitchMm: number;
    overhangMinMm: number;
    overhangMaxMm: number;
    minConfidence: number;
  };
  orientation: Orientation;
  model: { path: string; polishPath: string; providers: Provider[]; intraOpNumThreads: number };
  pipeline: {
    cornerThreshold: number;
    corners: number;
    refine: boolean;
    refineRadius: number;
    secondPass: boolean;
    firstPassInt8: boolean;
    secondPassBackReach: number;
    deepLook: boolean;
    polish: boolean;
    tipCheck: boolean;
    sharedTipCheck: boolean;
    sheetCountCheck: boolean;
    flipTest: boolean;
    roiCandidates: number;
    decode: 'argmax' | 'dark';
    sheetOrder: boolean;
    inFlight: number;
    decodeAhead: number;
    maxFrameSide: number;
  };
  source: {
    type: 'simulator' | 'hotfolder';
    simulator: { rate: number; defectRate: number; seed: number; size: number; frames: number };
    hotfolder: HotFolderOptions;
  };
  queue: { depth: number };
  mqtt: {
    /** null: run the embedded broker (aedes) on 127.0.0.1:1883 and publish to it. */
    url: string | null;
    protocolVersion: 4 | 5;
    clientId: string | null;
    username: string | null;
    passwordFile: string | null;
    credentialName: string | null;
    tls: { ca: string | null; cert: string | null; key: string | null; rejectUnauthorized: boolean };
    topicRoot: string;
    verdictExpirySec: number;
    replayRate: number;
    /** Resolved from passwordFile or $CREDENTIALS_DIRECTORY/credentialName; never serialized. */
    readonly password: string | null;
  };
  history: { path: string; retentionDays: number; maxSizeMb: number };
  log: { level: LogLevel };
  stopTimeoutSec: number;
}

export type Field =
  | { kind: 'string'; default: string | null; nullable?: boolean; doc: string }
  | { kind: 'int' | 'number'; default: number; min: number; max: number; doc: string }
  | { kind: 'bool'; default: boolean; doc: string }
  | { kind: 'enum'; values: readonly (string | number)[]; default: string | number; doc: string }
  | { kind: 'list'; values: readonly string[]; default: readonly string[]; doc: string }
  | { kind: 'section'; fields: Record<string, Field>; doc: string };

const str = (d: string, doc: string): Field => ({ kind: 'string', default: d, doc });
const optStr = (doc: string): Field => ({ kind: 'string', default: null, nullable: true, doc });
const int = (d: number, min: number, max: number, doc: string): Field => ({ kind: 'int', default: d, min, max, doc });
const num = (d: number, min: number, max: number, doc: string): Field => ({ kind: 'number', default: d, min, max, doc });
const bool = (d: boolean, doc: string): Field => ({ kind: 'bool', default: d, doc });
const oneOf = <T extends string | number>(values: readonly T[], d: T, doc: string): Field => ({ kind: 'enum', values, default: d, doc });
const section = (fields: Record<string, Field>, doc: string): Field => ({ kind: 'section', fields, doc });

export const SCHEMA: Record<string, Field> = {
  station: section(
    {
      line: str('line1', 'production line name, used in topics and ids'),
      station: str('xray1', 'station name; result ids are {station}-{seq}'),
      clientId: optStr('MQTT client id, unique per station (default xpole-{line}-{station})'),
    },
    'where this daemon stands',
  ),
  recipe: section(
    {
      name: str('stack-a16c15', 'recipe name'),
      anodes: int(16, 2, 200, 'anodes in the stack; cathodes = anodes - 1'),
      pixelPitchMm: num(0.02, 1e-6, 10, 'mm per pixel at the poles'),
      overhangMinMm: num(0.4, -100, 100, 'lowest overhang within spec'),
      overhangMaxMm: num(1.6, -100, 100, 'highest overhang within spec'),
      minConfidence: num(0.5, 0, 1, 'a pole below this heatmap confidence is POLE_MISSING'),
    },
    'the cell recipe and its spec limits',
  ),
  orientation: oneOf(ORIENTATIONS, 'tips-right', 'how frames are brought into canonical orientation (tips +x)'),
  model: section(
    {
      path: str(path.join(PACKAGE_ROOT, 'models/xpole-hrnet.onnx'), 'the ONNX model; its card (.json) sits beside it'),
      polishPath: str(path.join(PACKAGE_ROOT, 'models/xpole-polish.onnx'), 'the polish model (pipeline.polish), card beside it'),
      providers: { kind: 'list', values: PROVIDERS, default: PROVIDERS, doc: 'execution providers tried in order' },
      intraOpNumThreads: int(0, 0, 64, 'ONNX Runtime threads for one inference (0: its default)'),
    },
    'the heatmap model',
  ),
  pipeline: section(
    {
      cornerThreshold: int(20, 1, 255, "the refinement's corners: FAST threshold on a 0..255 scale, scaled to the frame's grey range"),
      corners: int(512, 4, 100000, "N: step 1's strongest corners, for the ROI and the refinement"),
      refine: bool(true, 'correct each pole by its nearest corner'),
      refineRadius: num(1, 0, 1000, 'corner search radius in frame pixels'),
      secondPass: bool(true, 'run the model again on the box around the first poles'),
      firstPassInt8: bool(true, "on the CPU provider, the first pass (which only places the second pass's box) runs the model's int8 variant beside it (NAME-int8.onnx, npm run quantize) where there is one"),
      secondPassBackReach: num(1.25, 0, 10, "how far behind the outermost tip the second pass's box reaches at least, times overhangMaxMm"),
      deepLook: bool(true, "a cathode below minConfidence gets a look at a box reaching twice as far behind the tips; taken from there only recessed past the limit"),
      polish: bool(true, 'move each pole to the apex a small CNN finds in a full-resolution patch around it (at most the card\'s maxMovePx)'),
      tipCheck: bool(true, "a cathode's confidence drops where the image shows no sheet ending at its tip (the step along the sheet, against the frame's other cathodes)"),
      sharedTipCheck: bool(true, 'one tip, one pole: of two poles of one kind within 0.3 anode pitches, the weaker gets confidence 0 (POLE_MISSING) if it is below 0.6'),
      sheetCountCheck: bool(true, "the poles and the stack's sheets agree in number: a cathode whose two anodes stand 2 anode spacings apart (sheets between them without a pole: more sheets than the recipe) loses confidence from 1.8 spacings on, all of it at 2.2; in a frame with 2 or more tips that two poles of one kind claim (fewer sheets than the recipe), the weaker of each gets 0 (POLE_MISSING)"),
      flipTest: bool(false, 'the final model pass also runs its crop mirrored top-bottom and averages the heatmaps'),
      roiCandidates: int(3, 1, 16, "the ROI stage's candidate regions, best first, the model may look at before a frame is ROI_NOT_FOUND"),
      decode: oneOf(['argmax', 'dark'] as const, 'dark', 'heatmap peak decoding'),
      sheetOrder: bool(true, "decode the channels together: a pole whose heatmap peaks nearly as high at its own sheet as at a neighbour's tip of its kind takes its own sheet (the poles of a kind follow the recipe's order, at least half a pitch apart)"),
      inFlight: int(2, 1, 8, 'frames analysed at once (corners to verdict), so stages of consecutive frames overlap'),
      decodeAhead: int(1, 0, 4, "frames decoded ahead while inFlight frames are analysed: a zlib PNG's serial inflate overlaps their analysis"),
      maxFrameSide: int(8192, 256, 65536, 'larger frames are refused (FRAME_TOO_LARGE)'),
    },
    'the inspection pipeline',
  ),
  source: section(
    {
      type: oneOf(['simulator', 'hotfolder'] as const, 'simulator', 'where frames come from'),
      simulator: section(
        {
          rate: num(2, 0, 1000, 'frames per second (0: as fast as the pipeline takes them)'),
          defectRate: num(0.1, 0, 1, 'share of frames rendered with a defect'),
          seed: int(1, 0, 2 ** 31 - 1, 'seed of the first frame; frame i of the set uses seed + i'),
          size: int(1000, 256, 8192, 'frame side in pixels'),
          frames: int(16, 1, 10000, 'distinct frames rendered (about 1 s each, in a worker), then repeated'),
        },
        'the synthetic detector',
      ),
      hotfolder: section(
        {
          dir: str('./var/hotfolder', 'the folder the detector writes into'),
          pattern: str('*.{png,tif,tiff,jpg,jpeg,bmp}', 'glob of frame names (case-insensitive)'),
          cellIdRegex: optStr('regex on the file name; the group "cellId" (or group 1) is the cell id'),
          sidecar: bool(false, 'read the cell id from NAME.json ({"cellId": "..."}) beside the frame'),
          afterJudged: oneOf(['move', 'delete'] as const, 'move', 'judged frames: move to done/ or delete (ERRORs always go to failed/)'),
          retentionDays: num(30, 0, 36500, 'delete files in done/ and failed/ older than this (0: keep)'),
          stableMs: int(200, 0, 600000, 'a file is taken once its size and mtime stay unchanged this long (a PNG ending in IEND at once)'),
          pollMs: int(250, 10, 60000, 'directory scan interval (fs.watch wakes it earlier)'),
          maxFileMb: num(512, 0.001, 65536, 'larger files are refused (FRAME_TOO_LARGE) without being read'),
        },
        'the hot folder',
      ),
    },
    'the frame source',
  ),
  queue: section({ depth: int(4, 1, 1000, 'frames waiting for the pipeline; full: the hot folder waits, the simulator drops') }, 'the frame queue'),
  mqtt: section(
    {
      url: optStr('broker URL (mqtt://, mqtts://); unset: an embedded broker on 127.0.0.1:1883'),
      protocolVersion: oneOf([4, 5] as const, 5, 'MQTT 3.1.1 (4) or 5'),
      clientId: optStr('overrides station.clientId'),
      username: optStr('user name'),
      passwordFile: optStr('file holding the password'),
      credentialName: optStr('systemd credential ($CREDENTIALS_DIRECTORY/NAME) holding the password'),
      tls: section(
        {
          ca: optStr('CA certificate file (PEM)'),
          cert: optStr('client certificate file (PEM)'),
          key: optStr('client key file (PEM)'),
          rejectUnauthorized: bool(true, 'verify the broker certificate'),
        },
        'TLS (mqtts:// URLs)',
      ),
      topicRoot: str('xpole/{line}/{station}', 'topic root; {line} and {station} are replaced'),
      verdictExpirySec: int(60, 1, 86400, 'MQTT 5 message expiry of verdict messages'),
      replayRate: num(50, 1, 100000, 'outbox messages per second replayed after an outage'),
    },
    'the broker',
  ),
  history: section(
    {
      path: str('./var/history.db', 'SQLite history file (WAL)'),
      retentionDays: num(365, 0, 36500, 'delete rows older than this (0: keep)'),
      maxSizeMb: num(4096, 0, 10_000_000, 'delete the oldest rows above this size (0: no limit)'),
    },
    'the history',
  ),
  log: section({ level: oneOf(LOG_LEVELS, 'info', 'debug (a line per frame), info (summaries), warning, err') }, 'logging'),
  stopTimeoutSec: num(20, 1, 3600, 'on SIGTERM: finish, flush and exit within this time'),
};
