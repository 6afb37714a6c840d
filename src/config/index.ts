// Loading and validating the YAML configuration. Every error is a UsageError naming the file,
// line and field (the CLI exits 2); unknown fields are errors too, since a typo would otherwise
// silently fall back to a default.
import fs from 'node:fs';
import path from 'node:path';
import { isMap, isScalar, isSeq, LineCounter, parseDocument, type Node as YamlNode } from 'yaml';
import { UsageError } from '../errors.ts';
import { makeRecipe, type Recipe } from '../inspect/recipe.ts';
import { SCHEMA, type Config, type Field } from './schema.ts';

export { SCHEMA, PROVIDERS, PACKAGE_ROOT, type Config, type Provider } from './schema.ts';

type Where = (node: YamlNode | null | undefined) => string;

/** The configuration from `file`, or the embedded default when no file is given. */
export function loadConfig(file?: string, env: NodeJS.ProcessEnv = process.env): Config {
  if (file === undefined) return finish(defaults(SCHEMA) as unknown as Config, '(embedded default)', () => '', env);
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    throw new UsageError(`cannot read config ${file}: ${(err as Error).message}`);
  }
  return parseConfig(text, file, env);
}

/** Parses and validates YAML text; `file` names it in messages. */
export function parseConfig(text: string, file: string, env: NodeJS.ProcessEnv = process.env): Config {
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines, uniqueKeys: true });
  if (doc.errors.length > 0) {
    const e = doc.errors[0]!;
    throw new UsageError(`${file}:${e.linePos?.[0]?.line ?? '?'}: not valid YAML: ${e.message.split('\n')[0]}`);
  }
  const where: Where = (node) => {
    const at = node?.range?.[0];
    return at === undefined ? file : `${file}:${lines.linePos(at).line}`;
  };
  const root = doc.contents;
  const config = defaults(SCHEMA) as Record<string, unknown>;
  if (root !== null && !(isScalar(root) && root.value === null)) {
    if (!isMap(root)) throw new UsageError(`${where(root)}: the configuration must be a mapping of sections`);
    readSection(root, SCHEMA, config, '', where);
  }
  return finish(config as unknown as Config, file, where, env, root as YamlNode | null);
}

/** The recipe the configuration describes. */
export function recipeOf(config: Config): Recipe {
  const r = config.recipe;
  return makeRecipe(r.name, r.anodes, r);
}

/** `{root}` with {line} and {station} filled in. */
export function topicRoot(config: Config): string {
  return config.mqtt.topicRoot.replaceAll('{line}', config.station.line).replaceAll('{station}', config.station.station);
}

export function mqttClientId(config: Config): string {
  return config.mqtt.clientId ?? config.station.clientId ?? `xpole-${config.station.line}-${config.station.station}`;
}

function defaults(fields: Record<string, Field>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [key, f] of Object.entries(fields)) {
    out[key] = f.kind === 'section' ? defaults(f.fields) : f.kind === 'list' ? [...f.default] : f.default;
  }
  return out;
}

function readSection(map: YamlNode, fields: Record<string, Field>, into: Record<string, unknown>, prefix: string, where: Where): void {
  if (!isMap(map)) return;
  for (const pair of map.items) {
    const keyNode = pair.key as YamlNode;
    const key = isScalar(keyNode) ? String(keyNode.value) : '?';
    const name = prefix + key;
    const field = fields[key];
    if (!field) {
      throw new UsageError(`${where(keyNode)}: unknown field '${name}' (known: ${Object.keys(fields).map((k) => prefix + k).join(', ')})`);
    }
    const valueNode = (pair.value ?? null) as YamlNode | null;
    const at = valueNode ?? keyNode;
    if (field.kind === 'section') {
      if (valueNode === null || (isScalar(valueNode) && valueNode.value === null)) continue;
      if (!isMap(valueNode)) throw new UsageError(`${where(at)}: ${name} must be a section (a mapping of fields)`);
      readSection(valueNode, field.fields, into[key] as Record<string, unknown>, name + '.', where);
      continue;
    }
    into[key] = readValue(valueNode, field, name, () => where(at));
  }
}

function readValue(node: YamlNode | null, field: Exclude<Field, { kind: 'section' }>, name: string, where: () => string): unknown {
  const bad = (what: string, got: unknown) => new UsageError(`${where()}: ${name} must be ${what}, got ${JSON.stringify(got)}`);
  if (field.kind === 'list') {
    if (!isSeq(node)) throw bad(`a list of ${field.values.join(', ')}`, isScalar(node) ? node.value : 'a mapping');
    const list = node.items.map((item) => (isScalar(item) ? item.value : String(item)));
    for (const v of list) if (!field.values.includes(v as string)) throw bad(`a list of ${field.values.join(', ')}`, list);
    if (list.length === 0 || new Set(list).size !== list.length) throw bad('a non-empty list without repeats', list);
    return list;
  }
  if (!isScalar(node)) throw bad('a single value', node === null ? null : node.toJSON());
  const v = node.value;
  switch (field.kind) {
    case 'string':
      if (v === null && field.nullable) return null;
      if (typeof v !== 'string' || v.length === 0) throw bad('a non-empty string', v);
      return v;
    case 'int':
    case 'number':
      if (typeof v !== 'number' || !Number.isFinite(v) || (field.kind === 'int' && !Number.isInteger(v)) || v < field.min || v > field.max) {
        throw bad(`${field.kind === 'int' ? 'an integer' : 'a number'} from ${field.min} to ${field.max}`, v);
      }
      return v;
    case 'bool':
      if (typeof v !== 'boolean') throw bad('true or false', v);
      return v;
    case 'enum':
      if (!field.values.includes(v as string | number)) throw bad(`one of ${field.values.join(', ')}`, v);
      return v;
  }
}

/** Cross-field checks, relative paths and the secret. */
function finish(config: Config, file: string, where: Where, env: NodeJS.ProcessEnv, root: YamlNode | null = null): Config {
  const at = (...keys: string[]): string => {
    let node: unknown = root;
    let found: YamlNode | null = null;
    for (const k of keys) {
      if (!isMap(node)) break;
      const pair = node.items.find((p) => isScalar(p.key) && p.key.value === k);
      if (!pair) break;
      found = (pair.value ?? pair.key) as YamlNode;
      node = pair.value;
    }
    return found ? where(found) : file;
  };
  try {
    recipeOf(config);
  } catch (err) {
    throw new UsageError(`${at('recipe')}: recipe: ${(err as Error).message}`);
  }
  const hf = config.source.hotfolder;
  if (hf.cellIdRegex !== null) {
    try {
      new RegExp(hf.cellIdRegex);
    } catch (err) {
      throw new UsageError(`${at('source', 'hotfolder', 'cellIdRegex')}: source.hotfolder.cellIdRegex is not a valid regular expression: ${(err as Error).message}`);
    }
  }
  for (const [key, v] of [['station.line', config.station.line], ['station.station', config.station.station]] as const) {
    // They become MQTT topic levels and result ids: no wildcards or separators.
    if (!/^[A-Za-z0-9._-]+$/.test(v)) {
      throw new UsageError(`${at(...key.split('.'))}: ${key} may hold only letters, digits, '.', '_' and '-', got ${JSON.stringify(v)}`);
    }
  }
  const root_ = topicRoot(config);
  if (/[#+]/.test(root_) || root_.startsWith('/') || root_.endsWith('/')) {
    throw new UsageError(`${at('mqtt', 'topicRoot')}: mqtt.topicRoot must not contain wildcards or start/end with '/', got ${JSON.stringify(root_)}`);
  }
  const m = config.mqtt;
  if (m.url !== null && !/^mqtts?:\/\/[^/@\s]+\/?$/.test(m.url)) {
    throw new UsageError(`${at('mqtt', 'url')}: mqtt.url must be mqtt://host:port or mqtts://host:port (credentials in their own fields), got ${m.url.includes('@') ? 'a URL with credentials (not shown)' : JSON.stringify(m.url)}`);
  }
  if (m.passwordFile !== null && m.credentialName !== null) {
    throw new UsageError(`${at('mqtt', 'credentialName')}: set mqtt.passwordFile or mqtt.credentialName, not both`);
  }
  let password: string | null = null;
  if (m.passwordFile !== null) password = readSecret(m.passwordFile, 'mqtt.passwordFile', at('mqtt', 'passwordFile'));
  if (m.credentialName !== null) {
    const dir = env.CREDENTIALS_DIRECTORY;
    if (!dir) throw new UsageError(`${at('mqtt', 'credentialName')}: mqtt.credentialName is set but $CREDENTIALS_DIRECTORY is not (use LoadCredential= in the unit)`);
    if (m.credentialName.includes('/')) throw new UsageError(`${at('mqtt', 'credentialName')}: mqtt.credentialName must be a plain name`);
    password = readSecret(path.join(dir, m.credentialName), 'mqtt.credentialName', at('mqtt', 'credentialName'));
  }
  for (const k of ['ca', 'cert', 'key'] as const) {
    const f = m.tls[k];
    if (f !== null && !fs.existsSync(f)) throw new UsageError(`${at('mqtt', 'tls', k)}: mqtt.tls.${k}: no such file ${f}`);
  }
  // Not enumerable: JSON.stringify(config) and logs of it never carry the password.
  Object.defineProperty(m, 'password', { value: password, enumerable: false });
  return config;
}

function readSecret(file: string, field: string, where: string): string {
  try {
    // One trailing newline is what `echo secret > file` leaves; it is not part of the secret.
    return fs.readFileSync(file, 'utf8').replace(/\r?\n$/, '');
  } catch (err) {
    throw new UsageError(`${where}: ${field}: cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
}
