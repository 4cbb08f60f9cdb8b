// LISTEN for PostgreSQL notifications on a connection of its own (a pooled one would be handed to
// queries and lose its LISTEN), reconnecting when it drops.
import pg from 'pg';
import type { Listener } from '../database.js';

const CHANNEL = /^[a-z_][a-z0-9_]{0,62}$/;
const RECONNECT_MIN_MS = 250;
const RECONNECT_MAX_MS = 10_000;

/**
 * One pg.Client outside the pool, LISTENing on `channel`; reconnects with backoff when the
 * connection drops (a server restart, a failover, an idle timeout on the way) until closed.
 */
export async function listenPostgres(url: string, channel: string, onNotify: () => void, onError: (err: Error) => void = () => undefined): Promise<Listener> {
  if (!CHANNEL.test(channel)) throw new Error(`invalid channel name ${channel}`);
  let client: pg.Client | undefined;
  let closed = false;
  let retry: NodeJS.Timeout | undefined;
  let delay = RECONNECT_MIN_MS;

  const connect = async (): Promise<void> => {
    const c = new pg.Client({ connectionString: url, application_name: 'tollgate-listen' });
    c.on('notification', (n) => {
      if (n.channel === channel) onNotify();
    });
    let dropped = false;
    const drop = (err?: Error) => {
      if (dropped) return;
      dropped = true;
      c.removeAllListeners('notification');
      c.end().catch(() => undefined);
      if (client === c) client = undefined;
      if (closed) return;
      if (err) onError(err);
      schedule();
    };
    c.on('error', (err) => drop(err));
    c.on('end', () => drop(new Error('the LISTEN connection ended')));
    try {
      await c.connect();
      await c.query(`LISTEN ${channel}`);
    } catch (e) {
      dropped = true;
      c.end().catch(() => undefined);
      throw e;
    }
    if (closed) {
      dropped = true;
      await c.end().catch(() => undefined);
      return;
    }
    client = c;
    delay = RECONNECT_MIN_MS;
  };

  const schedule = () => {
    if (closed || retry) return;
    retry = setTimeout(() => {
      retry = undefined;
      connect()
        .then(() => {
          // whatever was notified while we were away
          if (!closed) onNotify();
        })
        .catch((err: unknown) => {
          onError(err instanceof Error ? err : new Error(String(err)));
          delay = Math.min(delay * 2, RECONNECT_MAX_MS);
          schedule();
        });
    }, delay);
    retry.unref();
  };

  await connect();
  return {
    async close() {
      closed = true;
      if (retry) clearTimeout(retry);
      retry = undefined;
      const c = client;
      client = undefined;
      if (c) await c.end().catch(() => undefined);
    },
  };
}
