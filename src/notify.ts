// sd_notify for systemd Type=notify services (READY=1, WATCHDOG=1, STATUS=...), through the addon:
// Node has no unix datagram sockets.
import { native } from './native.ts';

/**
 * Sends `state` (newline-separated VAR=value assignments) to $NOTIFY_SOCKET.
 * Returns false, doing nothing, when NOTIFY_SOCKET is unset (not started by systemd); true when sent.
 * Throws an Error naming the socket when it is set but the message cannot be delivered.
 */
export function notify(state: string, socket: string | undefined = process.env.NOTIFY_SOCKET): boolean {
  if (typeof state !== 'string' || state.length === 0) throw new TypeError('state must be a non-empty string such as "READY=1"');
  if (socket === undefined || socket === '') return false;
  native.notify(socket, state);
  return true;
}
