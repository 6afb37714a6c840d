// A daemon stand-in for the last-will test: an MqttSink in its own process, killed with SIGKILL.
// argv[2]: JSON { db, url, root, clientId, username, password }
import { History } from '../../src/sinks/history.ts';
import { MqttSink } from '../../src/sinks/mqtt.ts';

const o = JSON.parse(process.argv[2]!) as {
  db: string; url: string; root: string; clientId: string; username: string; password: string;
};
const history = History.open(o.db);
const sink = new MqttSink({
  url: o.url,
  root: o.root,
  clientId: o.clientId,
  username: o.username,
  password: o.password,
  keepaliveSec: 5,
  status: { version: 'test', model: 'none', provider: 'cpu' },
  outbox: history.outbox,
});
sink.start();
const timer = setInterval(() => {
  if (sink.connected) {
    clearInterval(timer);
    process.stdout.write('connected\n');
  }
}, 20);
