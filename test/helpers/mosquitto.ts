// A real Debian mosquitto for tests: free loopback ports, a password file, a TLS listener with
// certificates made here with the openssl CLI, persistence so that queued messages survive a
// broker restart (as on a line), stop/start to simulate an outage.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';

export const MOSQUITTO = '/usr/sbin/mosquitto';

export function mosquittoAvailable(): boolean {
  return fs.existsSync(MOSQUITTO) && fs.existsSync('/usr/bin/mosquitto_passwd') && fs.existsSync('/usr/bin/openssl');
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const port = (srv.address() as net.AddressInfo).port;
      srv.close(() => resolve(port));
    });
  });
}

export interface Certs {
  /** The CA that signed the broker's certificate. */
  ca: string;
  serverCert: string;
  serverKey: string;
  /** A CA that signed nothing here: a client trusting only it must refuse the broker. */
  wrongCa: string;
  /** A client certificate signed by `ca`, for the listener that requires one. */
  clientCert: string;
  clientKey: string;
}

function openssl(args: string[], cwd: string): void {
  execFileSync('openssl', args, { cwd, stdio: ['ignore', 'ignore', 'pipe'] });
}

/** A CA, a server certificate for 127.0.0.1 and localhost (subjectAltName), and an unrelated CA. */
export function makeCerts(dir: string): Certs {
  fs.mkdirSync(dir, { recursive: true });
  const days = ['-days', '2'];
  for (const name of ['ca', 'wrong-ca']) {
    openssl(['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', `${name}.key`, '-out', `${name}.crt`, ...days,
      '-subj', `/CN=xpole test ${name}`], dir);
  }
  openssl(['req', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'server.key', '-out', 'server.csr', '-subj', '/CN=localhost'], dir);
  fs.writeFileSync(path.join(dir, 'san.ext'), 'subjectAltName = IP:127.0.0.1, DNS:localhost\n');
  openssl(['x509', '-req', '-in', 'server.csr', '-CA', 'ca.crt', '-CAkey', 'ca.key', '-CAcreateserial', '-out', 'server.crt',
    ...days, '-extfile', 'san.ext'], dir);
  openssl(['req', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'client.key', '-out', 'client.csr', '-subj', '/CN=xpole-client'], dir);
  openssl(['x509', '-req', '-in', 'client.csr', '-CA', 'ca.crt', '-CAkey', 'ca.key', '-CAcreateserial', '-out', 'client.crt', ...days], dir);
  return {
    clientCert: path.join(dir, 'client.crt'),
    clientKey: path.join(dir, 'client.key'),
    ca: path.join(dir, 'ca.crt'),
    serverCert: path.join(dir, 'server.crt'),
    serverKey: path.join(dir, 'server.key'),
    wrongCa: path.join(dir, 'wrong-ca.crt'),
  };
}

export interface BrokerOptions {
  /** user -> password; with users, anonymous clients are refused. */
  users?: Record<string, string>;
  tls?: boolean;
}

export class Mosquitto {
  readonly dir: string;
  port = 0;
  tlsPort = 0;
  /** TLS listener that also requires a client certificate signed by the CA. */
  mtlsPort = 0;
  certs: Certs | undefined;
  private child: ChildProcess | undefined;

  private constructor(private readonly opts: BrokerOptions) {
    this.dir = fs.mkdtempSync(path.join(os.tmpdir(), 'xpole-mosquitto-'));
  }

  static async start(opts: BrokerOptions = {}): Promise<Mosquitto> {
    const broker = new Mosquitto(opts);
    broker.port = await freePort();
    if (opts.tls) {
      broker.tlsPort = await freePort();
      broker.mtlsPort = await freePort();
      broker.certs = makeCerts(path.join(broker.dir, 'certs'));
    }
    broker.writeConfig();
    await broker.resume();
    return broker;
  }

  get url(): string {
    return `mqtt://127.0.0.1:${this.port}`;
  }

  get tlsUrl(): string {
    return `mqtts://127.0.0.1:${this.tlsPort}`;
  }

  get mtlsUrl(): string {
    return `mqtts://127.0.0.1:${this.mtlsPort}`;
  }

  get logFile(): string {
    return path.join(this.dir, 'mosquitto.log');
  }

  private writeConfig(): void {
    const lines = [
      'per_listener_settings false',
      `persistence true`,
      `persistence_location ${this.dir}/`,
      `log_dest file ${this.logFile}`,
      'log_type error',
      'log_type warning',
      'log_type notice',
      'log_type information',
      // As recommended for xpole's brokers: PUBACKs are not held back by Nagle's algorithm.
      'set_tcp_nodelay true',
      `listener ${this.port} 127.0.0.1`,
    ];
    // Started as root, mosquitto 2 switches to the 'mosquitto' user, which cannot read our temp files.
    if (process.getuid?.() === 0) lines.unshift('user root');
    if (this.opts.users) {
      const passwd = path.join(this.dir, 'passwd');
      let first = true;
      for (const [user, password] of Object.entries(this.opts.users)) {
        execFileSync('mosquitto_passwd', first ? ['-b', '-c', passwd, user, password] : ['-b', passwd, user, password], {
          stdio: 'ignore',
        });
        first = false;
      }
      lines.push('allow_anonymous false', `password_file ${passwd}`);
    } else {
      lines.push('allow_anonymous true');
    }
    if (this.certs) {
      lines.push(
        `listener ${this.tlsPort} 127.0.0.1`,
        `cafile ${this.certs.ca}`,
        `certfile ${this.certs.serverCert}`,
        `keyfile ${this.certs.serverKey}`,
        `listener ${this.mtlsPort} 127.0.0.1`,
        `cafile ${this.certs.ca}`,
        `certfile ${this.certs.serverCert}`,
        `keyfile ${this.certs.serverKey}`,
        'require_certificate true',
      );
    }
    fs.writeFileSync(path.join(this.dir, 'mosquitto.conf'), lines.join('\n') + '\n');
  }

  /** Starts the broker (again, after stop(): same ports, same persisted state). */
  async resume(): Promise<void> {
    const child = spawn(MOSQUITTO, ['-c', path.join(this.dir, 'mosquitto.conf')], { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    this.child = child;
    const deadline = Date.now() + 10_000;
    for (;;) {
      if (child.exitCode !== null) throw new Error(`mosquitto exited with ${child.exitCode}: ${stderr}${this.log()}`);
      if (await canConnect(this.port)) return;
      if (Date.now() > deadline) throw new Error(`mosquitto did not listen on ${this.port}: ${stderr}${this.log()}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  log(): string {
    try {
      return fs.readFileSync(this.logFile, 'utf8');
    } catch {
      return '';
    }
  }

  /** A clean broker shutdown (SIGTERM): it saves its persistence file. */
  async stop(): Promise<void> {
    const child = this.child;
    if (!child || child.exitCode !== null) return;
    const exited = new Promise((r) => child.once('exit', r));
    child.kill('SIGTERM');
    await exited;
    this.child = undefined;
  }

  /** Starts again on the same ports with the same state. */
  async restart(): Promise<void> {
    await this.stop();
    await this.resume();
  }

  async close(): Promise<void> {
    await this.stop();
    fs.rmSync(this.dir, { recursive: true, force: true });
  }
}

function canConnect(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1');
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}
