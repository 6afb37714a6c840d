// Security at the daemon level: TLS verification is on by default (a broker whose certificate
// the configured CA did not sign, or that only a private CA signed, is refused), the password
// never appears in logs, results, status or the history file, the history is not readable by
// other users, and the unit's `systemd-analyze security` exposure stays low where available.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Mosquitto, mosquittoAvailable } from '../helpers/mosquitto.ts';
import {
  dropFrame, framePngs, historyRows, ROOT, startDaemon, stopDaemon, Subscriber, tail, tempDir, until, writeConfig, type DaemonProcess,
} from './harness.ts';

const PASSWORD = 'Sup3r-s3cret-Pw_for-xpole';

describe.skipIf(!mosquittoAvailable())('security, daemon level', () => {
  let broker: Mosquitto;
  let dir: string;
  const daemons: DaemonProcess[] = [];

  beforeAll(async () => {
    broker = await Mosquitto.start({ tls: true, users: { line: PASSWORD, reader: 'reader-pw' } });
    dir = tempDir('sec');
  });
  afterAll(async () => {
    for (const d of daemons) await stopDaemon(d);
    await broker?.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  function station(name: string, tls: Record<string, unknown>, password = PASSWORD) {
    const sub = path.join(dir, name);
    fs.mkdirSync(sub);
    const pw = path.join(sub, 'mqtt-password');
    fs.writeFileSync(pw, password + '\n', { mode: 0o600 });
    return writeConfig(sub, broker.tlsUrl, { mqtt: { username: 'line', passwordFile: pw, tls }, log: { level: 'debug' } });
  }

  /** A daemon whose broker connection must fail: no status ever reaches the broker, the log says why. */
  async function refused(name: string, tls: Record<string, unknown>, pattern: RegExp) {
    const cfg = station(name, tls);
    const watcher = await Subscriber.connect(broker.url.replace('mqtt://', 'mqtt://reader:reader-pw@'), cfg.root);
    const d = startDaemon(cfg.file);
    daemons.push(d);
    await until(`a TLS refusal in the log`, () => d.out.some((l) => pattern.test(l)), 60_000, tail(d));
    await new Promise((r) => setTimeout(r, 1000));
    expect(watcher.statuses).toEqual([]);
    expect(d.out.join('\n')).not.toContain(PASSWORD);
    await stopDaemon(d);
    await watcher.close();
  }

  it('refuses a broker certificate signed by another CA than the configured one', async () => {
    await refused('wrong-ca', { ca: broker.certs!.wrongCa }, /mqtt.*(certificate|self.signed|unable to verify)/i);
  });

  it('refuses a privately signed broker certificate when no CA is configured (system CAs, verification on by default)', async () => {
    await refused('no-ca', {}, /mqtt.*(certificate|self.signed|unable to verify)/i);
  });

  it('with the right CA: connects; the password is in no log line, message or history byte; the history is private', async () => {
    const cfg = station('right-ca', { ca: broker.certs!.ca });
    const watcher = await Subscriber.connect(broker.url.replace('mqtt://', 'mqtt://reader:reader-pw@'), cfg.root);
    const d = startDaemon(cfg.file);
    daemons.push(d);
    await until('online over TLS', () => watcher.lastState() === 'online', 60_000, tail(d));
    const [png] = await framePngs(1);
    for (let i = 0; i < 3; i++) dropFrame(cfg.hot, `s-${i}.png`, png!);
    await until('3 results', () => watcher.ids().size === 3, 60_000, tail(d));
    expect((await stopDaemon(d)).code).toBe(0);

    expect(d.out.join('\n')).not.toContain(PASSWORD);
    expect(JSON.stringify(watcher.results) + JSON.stringify(watcher.statuses)).not.toContain(PASSWORD);
    for (const f of fs.readdirSync(path.dirname(cfg.db))) {
      expect(fs.readFileSync(path.join(path.dirname(cfg.db), f)).includes(Buffer.from(PASSWORD)), f).toBe(false);
    }
    expect(historyRows(cfg.db)).toHaveLength(3);
    // Not readable by other users: the file and its folder.
    expect(fs.statSync(cfg.db).mode & 0o077).toBe(0);
    expect(fs.statSync(path.dirname(cfg.db)).mode & 0o007).toBe(0);
    await watcher.close();
  });

  it('a wrong password is refused and not logged', async () => {
    const cfg = station('wrong-pw', { ca: broker.certs!.ca }, 'not-the-password-42');
    const d = startDaemon(cfg.file);
    daemons.push(d);
    await until('a refusal in the log', () => d.out.some((l) => /mqtt.*(not authori[sz]ed|bad user name or password|refused)/i.test(l)), 60_000, tail(d));
    await stopDaemon(d);
    expect(d.out.join('\n')).not.toContain('not-the-password-42');
  });
});

describe('systemd unit exposure', () => {
  const unit = path.join(ROOT, 'systemd/xpole.service');
  const probe = spawnSync('systemd-analyze', ['security', '--offline=true', unit], { encoding: 'utf8', timeout: 60_000 });
  it.skipIf(probe.error !== undefined || !fs.existsSync(unit) || !/exposure level/.test(probe.stdout ?? ''))(
    'systemd-analyze security --offline=true: exposure below 3.0 (OK or better)',
    () => {
      const m = /Overall exposure level for .*: ([\d.]+) (\w+)/.exec(probe.stdout)!;
      console.log(`systemd-analyze security: ${m[1]} ${m[2]}`);
      expect(Number(m[1])).toBeLessThan(3);
    },
  );
});
