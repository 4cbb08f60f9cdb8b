// A request's arrival, stamped as early as Node lets Tollgate see it, so the refresh grant can tell
// a request that was already in flight when a spend committed from one that came after it
// (tokens/spendLedger.ts). An HTTP client sends its request the moment its connection is up, and a
// busy server reads requests one by one, milliseconds after they arrived: the first request on a
// connection is stamped when the connection was accepted (if it came within ACCEPT_WINDOW_MS of
// it), later requests on a kept-alive connection when Node hands them over (before the public
// documents, Koa, routing or body parsing).
import type { IncomingMessage } from 'node:http';
import type { Server, Socket } from 'node:net';
import type { Clock } from '../clock.js';
import type { Arrival, SpendLedger } from '../tokens/spendLedger.js';

export interface ArrivalStamp {
  arrival: Arrival;
  /** Clock ms: compared with spends stored by other processes. */
  at: number;
}

/** A connection whose first request comes later than this (a pre-opened one) is stamped by that request. */
const ACCEPT_WINDOW_MS = 1000;

export class ArrivalStamper {
  private readonly stamps = new WeakMap<IncomingMessage, ArrivalStamp>();
  private readonly accepted = new WeakMap<Socket, { stamp: ArrivalStamp; wall: number }>();
  private readonly servers = new WeakSet<Server>();

  constructor(
    private readonly spends: SpendLedger,
    private readonly clock: Clock,
  ) {}

  private now(): ArrivalStamp {
    return { arrival: this.spends.arrival(), at: this.clock.now() };
  }

  /** Stamps connections as they are accepted (also called lazily, from the first request a server passes). */
  watch(server: Server): void {
    if (this.servers.has(server)) return;
    this.servers.add(server);
    server.on('connection', (socket: Socket) => this.accepted.set(socket, { stamp: this.now(), wall: performance.now() }));
  }

  stamp(req: IncomingMessage): void {
    const socket = req.socket as Socket & { server?: Server };
    if (socket.server) this.watch(socket.server);
    const first = this.accepted.get(socket);
    this.accepted.delete(socket); // only the first request of a connection
    // only the token endpoint asks (a POST): a GET of the JWKS or the deny list needs no stamp
    if (req.method !== 'POST') return;
    this.stamps.set(req, first && performance.now() - first.wall <= ACCEPT_WINDOW_MS ? first.stamp : this.now());
  }

  /** The stamp of a request, or one taken now for a request that bypassed stamp(). */
  of(req: IncomingMessage): ArrivalStamp {
    return this.stamps.get(req) ?? this.now();
  }
}
