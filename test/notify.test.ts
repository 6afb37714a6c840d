// sd_notify against a real unix datagram socket, held by a small Python peer (path and abstract '@').
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { notify } from '../src/notify.ts';

// Binds the datagram socket, says "ready", prints each datagram it receives as a JSON string.
const PEER = `
import json, socket, sys
addr = sys.argv[1]
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind("\\0" + addr[1:] if addr.startswith("@") else addr)
print("ready", flush=True)
for _ in range(int(sys.argv[2])):
    print(json.dumps(s.recv(65536).decode()), flush=True)
`;

const dir = mkdtempSync(path.join(os.tmpdir(), 'xpole-notify-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Starts the peer; resolves once bound. received() resolves with the n datagrams. */
async function listen(addr: string, n: number): Promise<{ received: Promise<string[]>; peer: ChildProcess }> {
  const peer = spawn('/usr/bin/python3', ['-c', PEER, addr, String(n)], { stdio: ['ignore', 'pipe', 'inherit'] });
  const lines: string[] = [];
  let onReady!: () => void;
  const ready = new Promise<void>((r) => (onReady = r));
  let buf = '';
  peer.stdout!.on('data', (d: Buffer) => {
    buf += d.toString();
    let i;
    while ((i = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, i);
      buf = buf.slice(i + 1);
      if (line === 'ready') onReady();
      else lines.push(JSON.parse(line) as string);
    }
  });
  const received = new Promise<string[]>((resolve, reject) => {
    peer.on('exit', (code) => (code === 0 ? resolve(lines) : reject(new Error(`peer exited ${code}`))));
  });
  await ready;
  return { received, peer };
}

describe('notify (sd_notify)', () => {
  it('sends the state to a path socket', async () => {
    const sock = path.join(dir, 'notify.sock');
    const { received } = await listen(sock, 2);
    expect(notify('READY=1', sock)).toBe(true);
    expect(notify('STATUS=model loaded\nWATCHDOG=1', sock)).toBe(true);
    expect(await received).toEqual(['READY=1', 'STATUS=model loaded\nWATCHDOG=1']);
  });

  it('sends to an abstract socket named with @, and reads NOTIFY_SOCKET by default', async () => {
    const name = `@xpole-test-${process.pid}-${Date.now()}`;
    const { received } = await listen(name, 1);
    const saved = process.env.NOTIFY_SOCKET;
    process.env.NOTIFY_SOCKET = name;
    try {
      expect(notify('WATCHDOG=1')).toBe(true);
    } finally {
      if (saved === undefined) delete process.env.NOTIFY_SOCKET;
      else process.env.NOTIFY_SOCKET = saved;
    }
    expect(await received).toEqual(['WATCHDOG=1']);
  });

  it('is a no-op returning false when NOTIFY_SOCKET is unset or empty', () => {
    expect(notify('READY=1', undefined)).toBe(false);
    expect(notify('READY=1', '')).toBe(false);
  });

  it('throws naming the socket when nobody listens, or the address is unusable', () => {
    const gone = path.join(dir, 'nobody.sock');
    expect(() => notify('READY=1', gone)).toThrow(new RegExp(`sendto ${gone}: (No such file|Connection refused)`));
    expect(() => notify('READY=1', 'relative.sock')).toThrow(/absolute path or an abstract '@name', got 'relative.sock'/);
    expect(() => notify('READY=1', '/' + 'x'.repeat(200))).toThrow(/longer than a unix socket address allows/);
    expect(() => notify('', '/tmp/x')).toThrow(TypeError);
  });
});
