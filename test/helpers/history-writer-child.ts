// The daemon's side of the concurrency test: another process recording results as fast as it can
// (synchronous FULL, as in production) and acknowledging every other one from the outbox.
// argv[2]: JSON { db, from, count }. Prints "writing" after the first record and "done N" at the end.
import { History } from '../../src/sinks/history.ts';
import { makeResult } from './results.ts';

const o = JSON.parse(process.argv[2]!) as { db: string; from: number; count: number };
const history = History.open(o.db);
for (let seq = o.from; seq < o.from + o.count; seq++) {
  history.record(makeResult(seq));
  if (seq % 2 === 0) history.outbox.ack(makeResult(seq).id);
  if (seq === o.from) process.stdout.write('writing\n');
}
history.close();
process.stdout.write(`done ${o.count}\n`);
