// The YAML configuration: defaults, errors that name field and line, secrets, the CLI's exit 2,
// and the example file documenting every option.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadConfig, parseConfig, recipeOf, topicRoot, mqttClientId, SCHEMA } from '../src/config/index.ts';
import { pipelineOptionsFromConfig } from '../src/config/pipeline.ts';
import type { Field } from '../src/config/schema.ts';
import { UsageError } from '../src/errors.ts';

const ROOT = path.resolve(import.meta.dirname, '..');
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'xpole-config-'));
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

function errorOf(text: string, env: NodeJS.ProcessEnv = {}): string {
  try {
    parseConfig(text, 'x.yaml', env);
  } catch (err) {
    expect(err).toBeInstanceOf(UsageError);
    return (err as Error).message;
  }
  throw new Error('expected a UsageError');
}

/** Every leaf option as a dotted path. */
function leaves(fields: Record<string, Field>, prefix = ''): string[] {
  return Object.entries(fields).flatMap(([k, f]) => (f.kind === 'section' ? leaves(f.fields, `${prefix}${k}.`) : [`${prefix}${k}`]));
}

describe('config', () => {
  it('is the embedded default without a file, and an empty file gives the same', () => {
    const c = loadConfig(undefined, {});
    expect(c.source.type).toBe('simulator');
    expect(c.mqtt.url).toBeNull(); // the embedded broker
    expect(c.history.path).toBe('./var/history.db');
    expect(c.model.providers).toEqual(['tensorrt', 'cuda', 'cpu']);
    expect(c.mqtt.verdictExpirySec).toBe(60);
    expect(c.mqtt.tls.rejectUnauthorized).toBe(true);
    expect(topicRoot(c)).toBe('xpole/line1/xray1');
    expect(mqttClientId(c)).toBe('xpole-line1-xray1');
    expect(recipeOf(c).keypoints).toHaveLength(31);
    expect(parseConfig('', 'empty.yaml', {})).toEqual(c);
    expect(parseConfig('# only a comment\n', 'c.yaml', {})).toEqual(c);
  });

  it('merges a partial file over the defaults', () => {
    const c = parseConfig(
      'station:\n  line: L7\n  station: st3\nsource:\n  type: hotfolder\n  hotfolder:\n    dir: /data/in\n    afterJudged: delete\nmqtt:\n  url: mqtts://broker:8883\n  protocolVersion: 4\n',
      'c.yaml',
      {},
    );
    expect(topicRoot(c)).toBe('xpole/L7/st3');
    expect(c.source.hotfolder).toMatchObject({ dir: '/data/in', afterJudged: 'delete', stableMs: 200, pattern: '*.{png,tif,tiff,jpg,jpeg,bmp}' });
    expect(c.mqtt.protocolVersion).toBe(4);
    expect(c.queue.depth).toBe(4);
  });

  it('maps pipeline.firstPassInt8 onto the pipeline: on, the model\'s variant (the pipeline\'s default); off, none', () => {
    const on = pipelineOptionsFromConfig(parseConfig('', 'c.yaml', {}));
    expect('firstPassModelPath' in on).toBe(false);
    const off = pipelineOptionsFromConfig(parseConfig('pipeline:\n  firstPassInt8: false\n', 'c.yaml', {}));
    expect(off.firstPassModelPath).toBeNull();
  });

  it('maps pipeline.tipCheck, sharedTipCheck and sheetCountCheck onto the pipeline separately (all on by default)', () => {
    const on = pipelineOptionsFromConfig(parseConfig('', 'c.yaml', {}));
    expect([on.tipCheck, on.sharedTipCheck, on.sheetCountCheck]).toEqual([true, true, true]);
    const off = pipelineOptionsFromConfig(parseConfig('pipeline:\n  sharedTipCheck: false\n', 'c.yaml', {}));
    expect([off.tipCheck, off.sharedTipCheck, off.sheetCountCheck]).toEqual([true, false, true]);
    const noGaps = pipelineOptionsFromConfig(parseConfig('pipeline:\n  sheetCountCheck: false\n', 'c.yaml', {}));
    expect([noGaps.tipCheck, noGaps.sharedTipCheck, noGaps.sheetCountCheck]).toEqual([true, true, false]);
    expect(() => parseConfig('pipeline:\n  sharedTipCheck: maybe\n', 'c.yaml', {})).toThrow(/pipeline\.sharedTipCheck/);
    expect(() => parseConfig('pipeline:\n  sheetCountCheck: 1\n', 'c.yaml', {})).toThrow(/pipeline\.sheetCountCheck/);
  });

  it('maps pipeline.sheetOrder onto the pipeline (on by default) and refuses a non-boolean', () => {
    expect(pipelineOptionsFromConfig(parseConfig('', 'c.yaml', {})).sheetOrder).toBe(true);
    expect(pipelineOptionsFromConfig(parseConfig('pipeline:\n  sheetOrder: false\n', 'c.yaml', {})).sheetOrder).toBe(false);
    expect(() => parseConfig('pipeline:\n  sheetOrder: yes please\n', 'c.yaml', {})).toThrow(/pipeline\.sheetOrder/);
  });

  it('names the field and the line of a bad value', () => {
    expect(errorOf('station:\n  line: L1\nmqtt:\n  verdictExpirySec: soon\n')).toBe(
      'x.yaml:4: mqtt.verdictExpirySec must be an integer from 1 to 86400, got "soon"',
    );
    expect(errorOf('source:\n  hotfolder:\n\n    afterJudged: archive\n')).toMatch(/^x\.yaml:4: source\.hotfolder\.afterJudged must be one of move, delete, got "archive"$/);
    expect(errorOf('model:\n  providers: [cpu, gpu]\n')).toMatch(/^x\.yaml:2: model\.providers must be a list of tensorrt, cuda, cpu/);
    expect(errorOf('queue:\n  depth: 0\n')).toMatch(/^x\.yaml:2: queue\.depth must be an integer from 1 to 1000, got 0$/);
    expect(errorOf('pipeline:\n  refine: "yes"\n')).toMatch(/^x\.yaml:2: pipeline\.refine must be true or false/);
    expect(errorOf('mqtt: 5\n')).toMatch(/^x\.yaml:1: mqtt must be a section/);
  });

  it('refuses unknown fields (a typo would silently fall back to a default)', () => {
    expect(errorOf('history:\n  path: a.db\n  retentionDay: 3\n')).toMatch(
      /^x\.yaml:3: unknown field 'history\.retentionDay' \(known: history\.path, history\.retentionDays, history\.maxSizeMb\)$/,
    );
    expect(errorOf('stations:\n  line: a\n')).toMatch(/^x\.yaml:1: unknown field 'stations'/);
  });

  it('checks values that depend on each other and reports YAML syntax errors with their line', () => {
    expect(errorOf('recipe:\n  overhangMinMm: 2\n  overhangMaxMm: 1\n')).toMatch(/^x\.yaml:2: recipe: .*overhangMinMm must be below overhangMaxMm/);
    expect(errorOf('source:\n  hotfolder:\n    cellIdRegex: "([a-z"\n')).toMatch(/^x\.yaml:3: source\.hotfolder\.cellIdRegex is not a valid regular expression/);
    expect(errorOf('station:\n  station: "a/#"\n')).toMatch(/^x\.yaml:2: station\.station may hold only/);
    expect(errorOf('mqtt:\n  url: http://broker\n')).toMatch(/^x\.yaml:2: mqtt\.url must be mqtt:\/\/host:port or mqtts:\/\/host:port/);
    const withCredentials = errorOf('mqtt:\n  url: mqtt://user:s3cr3t@broker:1883\n');
    expect(withCredentials).toMatch(/^x\.yaml:2: mqtt\.url must be/);
    expect(withCredentials).not.toContain('s3cr3t');
    expect(errorOf('a: 1\n b: [\n')).toMatch(/^x\.yaml:\d+: not valid YAML/);
    expect(errorOf('log:\n  level: info\nlog:\n  level: debug\n')).toMatch(/^x\.yaml:3: not valid YAML/);
  });

  it('reads the password from a file or a systemd credential, and never serializes it', () => {
    const file = path.join(dir, 'pw');
    fs.writeFileSync(file, 's3cr3t-pw\n');
    const c = parseConfig(`mqtt:\n  username: xpole\n  passwordFile: ${file}\n`, 'c.yaml', {});
    expect(c.mqtt.password).toBe('s3cr3t-pw');
    expect(JSON.stringify(c)).not.toContain('s3cr3t');

    fs.writeFileSync(path.join(dir, 'mqtt-password'), 'cred-pw');
    const d = parseConfig('mqtt:\n  credentialName: mqtt-password\n', 'c.yaml', { CREDENTIALS_DIRECTORY: dir });
    expect(d.mqtt.password).toBe('cred-pw');

    expect(errorOf('mqtt:\n  credentialName: mqtt-password\n')).toMatch(/^x\.yaml:2: .*\$CREDENTIALS_DIRECTORY is not/);
    expect(errorOf(`mqtt:\n  passwordFile: ${dir}/missing\n`)).toMatch(/^x\.yaml:2: mqtt\.passwordFile: cannot read .*ENOENT/);
  });

  it('the example in systemd/ parses and documents every option', () => {
    const example = path.join(ROOT, 'systemd/xpole.example.yaml');
    const text = fs.readFileSync(example, 'utf8');
    // Its secret and TLS files exist only on the installed system; the rest is checked as is.
    const c = parseConfig(text.replace(/^(\s*)(passwordFile|credentialName|ca|cert|key):.*$/gm, '$1$2: null'), example, {});
    expect(c.source.type).toBe('hotfolder');
    const uncommented = text.replace(/^(\s*)# ?([A-Za-z]+:)/gm, '$1$2');
    for (const leaf of leaves(SCHEMA)) {
      const key = leaf.split('.').pop()!;
      expect(uncommented, `systemd/xpole.example.yaml lacks ${leaf}`).toMatch(new RegExp(`^\\s*${key}:`, 'm'));
    }
  });

  it('makes the CLI exit 2 with the field and line on stderr', () => {
    const bad = path.join(dir, 'bad.yaml');
    fs.writeFileSync(bad, 'source:\n  type: camera\n');
    const xpole = path.join(ROOT, 'bin/xpole.js');
    const r = spawnSync(process.execPath, [xpole, 'run', '--config', bad], { encoding: 'utf8', timeout: 60_000 });
    expect(r.status).toBe(2);
    expect(r.stderr).toContain(`${bad}:2: source.type must be one of simulator, hotfolder, got "camera"`);
    const missing = spawnSync(process.execPath, [xpole, 'run', '--config', path.join(dir, 'nope.yaml')], { encoding: 'utf8', timeout: 60_000 });
    expect(missing.status).toBe(2);
    expect(missing.stderr).toMatch(/cannot read config .*nope\.yaml/);
  });
});
