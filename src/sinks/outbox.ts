// The durable outbox: results waiting for the broker's PUBACK, in the history database.
// A row is written in the same transaction as its history row (History.record) and deleted
// only when the broker has acknowledged it, so a broker outage or a crash loses nothing.
import type Database from 'better-sqlite3';
import { guardStorage } from './unavailable.ts';

export interface OutboxRow {
  id: string;
  seq: number;
  /** The result message, JSON, exactly as published on {root}/result. */
  payload: string;
}

export class Outbox {
  private insertStmt!: Database.Statement<[string, number, string]>;
  private peekStmt!: Database.Statement<[number], OutboxRow>;
  private ackStmt!: Database.Statement<[string]>;
  private depthStmt!: Database.Statement<[], { n: number }>;

  constructor(db: Database.Database) {
    this.attach(db);
  }

  /** (Re)binds to a connection: History reopens its connection after a storage failure. */
  attach(db: Database.Database): void {
    this.insertStmt = db.prepare('INSERT INTO outbox (id, seq, payload) VALUES (?, ?, ?)');
    this.peekStmt = db.prepare('SELECT id, seq, payload FROM outbox ORDER BY seq, pos LIMIT ?');
    this.ackStmt = db.prepare('DELETE FROM outbox WHERE id = ?');
    this.depthStmt = db.prepare('SELECT count(*) AS n FROM outbox');
  }

  /** Only inside History.record's transaction. */
  enqueue(id: string, seq: number, payload: string): void {
    this.insertStmt.run(id, seq, payload);
  }

  /** The oldest pending rows, in seq order. */
  peek(limit: number): OutboxRow[] {
    return guardStorage('reading the outbox', () => this.peekStmt.all(limit));
  }

  /** The broker acknowledged the result: it leaves the outbox. False when it was not there. */
  ack(id: string): boolean {
    return guardStorage('acknowledging an outbox row', () => this.ackStmt.run(id).changes > 0);
  }

  depth(): number {
    return guardStorage('counting the outbox', () => this.depthStmt.get()!.n);
  }
}
