// The verifier's in-memory deny list: loaded from Tollgate's feed, kept current over SSE or by
// polling, resumed by cursor after a disconnect, and failing closed once it is stale.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { PASSWORD, basic } from '../helpers.js';
import { DenyListMirror } from '../../src/verifier/denyList.js';
import { type Verifier, type VerifierOptions, createVerifier } from '../../src/verifier/index.js';
import { type Tollgate, claims, codeOf, eventually, login, signAsTollgate, startTollgate } from './fixtures.js';

let tg: Tollgate;
const open: { close(): void }[] = [];

beforeAll(async () => {
  // heartbeats every second, so a stream verifier can use a short maxStaleness
  tg = await startTollgate({ config: { denyList: { heartbeatSeconds: 1 } } });
  await tg.t.addUser('alice', PASSWORD, ['RETRIEVE_TODOS']);
});

afterEach(() => {
  tg.gate.closed = false;
  for (const v of open.splice(0)) v.close();
});

afterAll(async () => {
  await tg.close();
});

function make(denyList: Partial<NonNullable<VerifierOptions['denyList']>> = {}): Verifier {
  const v = createVerifier({
    issuer: tg.url,
    audience: 'todo-api',
    denyList: { url: `${tg.url}/deny-list`, clientId: tg.feed.client_id, clientSecret: tg.feed.client_secret, ...denyList },
  });
  open.push(v);
  return v;
}

function revoke(token: string) {
  return tg.t.request.post('/revoke').set('Authorization', basic(tg.web)).type('form').send({ token }).expect(200);
}

describe('deny list: picking up revocations', () => {
  it.each(['stream', 'poll'] as const)('%s mode: a revoked access token is refused soon after', async (mode) => {
    const v = make({ mode, pollInterval: 0.05 });
    await v.ready();
    const { access_token } = await login(tg, 'alice', PASSWORD);
    expect(await codeOf(v.verify(access_token))).toBe('resolved');
    await revoke(access_token);
    await eventually(async () => expect(await codeOf(v.verify(access_token))).toBe('ERR_TOKEN_REVOKED'), 2000);
  });

  it('stream mode is the default and receives entries over /deny-list/events', async () => {
    const v = make();
    await v.ready();
    await eventually(() => expect(tg.requests.some((r) => r.url === '/deny-list/events')).toBe(true));
    const { refresh_token, access_token } = await login(tg, 'alice', PASSWORD);
    await revoke(refresh_token);
    await eventually(async () => expect(await codeOf(v.verify(access_token))).toBe('ERR_TOKEN_REVOKED'), 2000);
  });

  it('loads a feed longer than one page, following the cursor', async () => {
    const jtis = Array.from({ length: 1500 }, (_, i) => `bulk-${i}`);
    const expiresAt = Math.floor(Date.now() / 1000) + 600;
    await tg.t.app.services.denyList.add(jtis.map((value) => ({ type: 'jti' as const, value, expires_at: expiresAt })));
    await tg.t.app.services.denyList.sync();
    const from = tg.requests.length;
    const v = make({ mode: 'poll', pollInterval: 5 });
    await v.ready();
    expect(tg.requests.slice(from).filter((r) => r.url.startsWith('/deny-list?after=')).length).toBeGreaterThanOrEqual(1);
    for (const jti of ['bulk-0', 'bulk-999', 'bulk-1000', 'bulk-1499']) {
      expect(await codeOf(v.verify(await signAsTollgate(tg, {}, claims(tg, { jti }))))).toBe('ERR_TOKEN_REVOKED');
    }
    expect(await codeOf(v.verify(await signAsTollgate(tg, {}, claims(tg, { jti: 'bulk-1500' }))))).toBe('resolved');
  });
});

describe('deny list: reconnecting', () => {
  it('after a dropped stream, reconnects and catches up by cursor on what it missed', async () => {
    const v = make({ mode: 'stream' });
    await v.ready();
    await eventually(() => expect(tg.requests.some((r) => r.url === '/deny-list/events')).toBe(true));
    const missed = await login(tg, 'alice', PASSWORD);

    tg.gate.closed = true;
    tg.dropStreams();
    await revoke(missed.access_token);
    // the feed is unreachable: the verifier cannot know yet
    expect(await codeOf(v.verify(missed.access_token))).toBe('resolved');

    const reopenedAt = tg.requests.length;
    tg.gate.closed = false;
    await eventually(async () => expect(await codeOf(v.verify(missed.access_token))).toBe('ERR_TOKEN_REVOKED'), 10_000);
    expect(tg.requests.slice(reopenedAt).some((r) => /^\/deny-list\?after=\d+$/.test(r.url))).toBe(true);

    // and the new stream, resumed from the cursor, delivers what comes next
    await eventually(() => expect(tg.requests.slice(reopenedAt).some((r) => r.url === '/deny-list/events' && /^\d+$/.test(r.lastEventId ?? ''))).toBe(true), 5000);
    const next = await login(tg, 'alice', PASSWORD);
    await revoke(next.access_token);
    await eventually(async () => expect(await codeOf(v.verify(next.access_token))).toBe('ERR_TOKEN_REVOKED'), 2000);
  });

  it('reconnects after Tollgate closes the stream on shutdown (with its retry hint)', async () => {
    const v = make({ mode: 'stream' });
    await v.ready();
    await eventually(() => expect(tg.t.app.hub.streams.size).toBeGreaterThan(0));
    const opened = tg.requests.filter((r) => r.url === '/deny-list/events').length;
    for (const s of tg.t.app.hub.streams) s.end('retry: 200\n\n');
    await eventually(() => expect(tg.requests.filter((r) => r.url === '/deny-list/events').length).toBeGreaterThan(opened), 5000);
    const { access_token } = await login(tg, 'alice', PASSWORD);
    await revoke(access_token);
    await eventually(async () => expect(await codeOf(v.verify(access_token))).toBe('ERR_TOKEN_REVOKED'), 2000);
  });

  it('an idle stream stays fresh on heartbeats alone', async () => {
    const v = make({ mode: 'stream', maxStaleness: 2.5 });
    await v.ready();
    const { access_token } = await login(tg, 'alice', PASSWORD);
    const streamsBefore = tg.requests.filter((r) => r.url === '/deny-list/events').length;
    await new Promise((r) => setTimeout(r, 3500)); // longer than maxStaleness, with no entries
    expect(await codeOf(v.verify(access_token))).toBe('resolved');
    expect(tg.requests.filter((r) => r.url === '/deny-list/events').length).toBe(streamsBefore);
  });
});

describe('deny list: staleness', () => {
  it('poll mode: fails closed with ERR_DENY_LIST_UNAVAILABLE past maxStaleness, and recovers', async () => {
    const v = make({ mode: 'poll', pollInterval: 0.05, maxStaleness: 0.3 });
    await v.ready();
    const { access_token } = await login(tg, 'alice', PASSWORD);
    expect(await codeOf(v.verify(access_token))).toBe('resolved');
    tg.gate.closed = true;
    await eventually(async () => expect(await codeOf(v.verify(access_token))).toBe('ERR_DENY_LIST_UNAVAILABLE'));
    tg.gate.closed = false;
    await eventually(async () => expect(await codeOf(v.verify(access_token))).toBe('resolved'));
  });

  it('stream mode: fails closed while the stream is gone and cannot reconnect, and recovers', async () => {
    const v = make({ mode: 'stream', maxStaleness: 1.5 });
    await v.ready();
    const { access_token } = await login(tg, 'alice', PASSWORD);
    tg.gate.closed = true;
    tg.dropStreams();
    await eventually(async () => expect(await codeOf(v.verify(access_token))).toBe('ERR_DENY_LIST_UNAVAILABLE'), 10_000);
    tg.gate.closed = false;
    await eventually(async () => expect(await codeOf(v.verify(access_token))).toBe('resolved'), 10_000);
  });

  it('a verifier that never loaded the list fails closed; failOpen verifies without it', async () => {
    tg.gate.closed = true;
    const closed = make({ mode: 'poll', pollInterval: 0.05 });
    const failOpen = make({ mode: 'poll', pollInterval: 0.05, failOpen: true });
    expect(await codeOf(closed.ready())).toBe('ERR_DENY_LIST_UNAVAILABLE');
    const { access_token } = await login(tg, 'alice', PASSWORD);
    expect(await codeOf(closed.verify(access_token))).toBe('ERR_DENY_LIST_UNAVAILABLE');
    expect(await codeOf(failOpen.verify(access_token))).toBe('resolved');
    // failOpen skips only the list: every other check still applies
    expect(await codeOf(failOpen.verify(await signAsTollgate(tg, { typ: 'JWT' }, claims(tg))))).toBe('ERR_TOKEN_TYPE');
    tg.gate.closed = false;
    await eventually(() => closed.ready(), 5000);
    expect(await codeOf(closed.verify(access_token))).toBe('resolved');
  });

  it('ready() rejects when the feed refuses the client (wrong secret)', async () => {
    const v = make({ clientSecret: 'tgs_wrong' });
    const e = await v.ready().catch((x: unknown) => x);
    expect(e).toMatchObject({ code: 'ERR_DENY_LIST_UNAVAILABLE' });
    expect(String((e as Error).message)).toContain('401');
  });

  it('close() stops polling', async () => {
    const v = make({ mode: 'poll', pollInterval: 0.02 });
    await v.ready();
    v.close();
    const count = tg.requests.length;
    await new Promise((r) => setTimeout(r, 200));
    expect(tg.requests.length).toBe(count);
  });

  it('rejects impossible settings at construction', () => {
    const base = { url: `${tg.url}/deny-list`, clientId: 'a', clientSecret: 'b' };
    expect(() => createVerifier({ issuer: tg.url, audience: 'x', denyList: { ...base, mode: 'push' as 'poll' } })).toThrow(TypeError);
    expect(() => createVerifier({ issuer: tg.url, audience: 'x', denyList: { ...base, pollInterval: 0 } })).toThrow(TypeError);
    expect(() => createVerifier({ issuer: tg.url, audience: 'x', denyList: { ...base, maxStaleness: -1 } })).toThrow(TypeError);
    expect(() => createVerifier({ issuer: tg.url, audience: 'x', denyList: { ...base, url: 'not a url' } })).toThrow(TypeError);
    expect(() => createVerifier({ issuer: tg.url, audience: 'x', denyList: { ...base, clientId: '' } })).toThrow(TypeError);
    expect(() => createVerifier({ issuer: tg.url, audience: 'x', denyList: { ...base, clientSecret: undefined as unknown as string } })).toThrow(TypeError);
  });
});

describe('deny list: entries (against a hand-written feed)', () => {
  let feed: http.Server;
  let url: string;
  let answer: (req: http.IncomingMessage, res: http.ServerResponse) => void;
  const mirrors: DenyListMirror[] = [];

  beforeAll(async () => {
    feed = http.createServer((req, res) => answer(req, res));
    await new Promise<void>((r) => feed.listen(0, '127.0.0.1', r));
    url = `http://127.0.0.1:${(feed.address() as AddressInfo).port}/deny-list`;
  });
  afterEach(() => {
    for (const m of mirrors.splice(0)) m.close();
  });
  afterAll(async () => {
    feed.closeAllConnections();
    await new Promise<void>((r) => feed.close(() => r()));
  });

  const mirror = (extra: { pollInterval?: number; clockToleranceSeconds?: number } = {}) => {
    const m = new DenyListMirror({ url, clientId: 'todo-api', clientSecret: 's', mode: 'poll', pollInterval: extra.pollInterval ?? 60 }, { now: () => Date.now(), clockToleranceSeconds: extra.clockToleranceSeconds ?? 0 });
    mirrors.push(m);
    return m;
  };
  const page = (entries: unknown[], cursor = '10') => JSON.stringify({ cursor, entries });
  const now = () => Math.floor(Date.now() / 1000);

  it('authenticates with HTTP Basic, form-encoding the id and secret (RFC 6749 §2.3.1)', async () => {
    let authorization: string | undefined;
    answer = (req, res) => {
      authorization = req.headers.authorization;
      res.setHeader('content-type', 'application/json').end(page([]));
    };
    const m = new DenyListMirror({ url, clientId: 'api:1', clientSecret: 'a b+c', mode: 'poll', pollInterval: 60 }, { now: () => Date.now(), clockToleranceSeconds: 0 });
    mirrors.push(m);
    await m.whenLoaded();
    expect(Buffer.from(authorization!.replace(/^Basic /, ''), 'base64').toString()).toBe('api%3A1:a+b%2Bc');
  });

  it('denies by jti, sid, and sub with issued_before at or after iat', async () => {
    answer = (req, res) => {
      const entries = req.url?.includes('after=') ? [] : [
        { type: 'jti', value: 'j1', expires_at: now() + 60 },
        { type: 'sid', value: 's1', expires_at: now() + 60 },
        { type: 'sub', value: 'u1', issued_before: 1000, expires_at: now() + 60 },
      ];
      res.setHeader('content-type', 'application/json').end(page(entries));
    };
    const m = mirror();
    await m.whenLoaded();
    expect(m.isDenied({ jti: 'j1' })).toBe(true);
    expect(m.isDenied({ jti: 'j2', sid: 's1' })).toBe(true);
    expect(m.isDenied({ sub: 'u1', iat: 999 })).toBe(true);
    expect(m.isDenied({ sub: 'u1', iat: 1000 })).toBe(true);
    expect(m.isDenied({ sub: 'u1', iat: 1001 })).toBe(false);
    expect(m.isDenied({ jti: 'j2', sid: 's2', sub: 'u2', iat: 1 })).toBe(false);
    expect(m.fresh).toBe(true);
  });

  it('denies by client_id with issued_before at or after iat (same second included), and by kid', async () => {
    answer = (req, res) => {
      const entries = req.url?.includes('after=') ? [] : [
        { type: 'client', value: 'web', issued_before: 1000, expires_at: now() + 60 },
        { type: 'kid', value: 'k1', expires_at: now() + 60 },
      ];
      res.setHeader('content-type', 'application/json').end(page(entries));
    };
    const dropped: string[] = [];
    const m = new DenyListMirror({ url, clientId: 'todo-api', clientSecret: 's', mode: 'poll', pollInterval: 60 }, { now: () => Date.now(), clockToleranceSeconds: 0, onKidDenied: (kid) => dropped.push(kid) });
    mirrors.push(m);
    await m.whenLoaded();
    expect(m.isDenied({ client_id: 'web', iat: 999 })).toBe(true);
    expect(m.isDenied({ client_id: 'web', iat: 1000 })).toBe(true);
    expect(m.isDenied({ client_id: 'web', iat: 1001 })).toBe(false);
    expect(m.isDenied({ client_id: 'mobile', iat: 1 })).toBe(false);
    // a client entry names the client_id claim, not a sub that happens to be equal
    expect(m.isDenied({ sub: 'web', client_id: 'mobile', iat: 1 })).toBe(false);
    expect(m.isKidDenied('k1')).toBe(true);
    expect(m.isKidDenied('k2')).toBe(false);
    expect(dropped).toEqual(['k1']);
  });

  it('lets client and kid entries lapse at expires_at (plus clockTolerance)', async () => {
    let clock = Date.now();
    const expiresAt = Math.floor(clock / 1000) + 60;
    answer = (req, res) => {
      const entries = req.url?.includes('after=') ? [] : [
        { type: 'client', value: 'web', issued_before: 1000, expires_at: expiresAt },
        { type: 'kid', value: 'k1', expires_at: expiresAt },
      ];
      res.setHeader('content-type', 'application/json').end(page(entries));
    };
    const m = new DenyListMirror({ url, clientId: 'todo-api', clientSecret: 's', mode: 'poll', pollInterval: 60 }, { now: () => clock, clockToleranceSeconds: 5 });
    mirrors.push(m);
    await m.whenLoaded();
    clock = (expiresAt + 4) * 1000;
    expect(m.isDenied({ client_id: 'web', iat: 1 })).toBe(true);
    expect(m.isKidDenied('k1')).toBe(true);
    clock = (expiresAt + 5) * 1000;
    expect(m.isDenied({ client_id: 'web', iat: 1 })).toBe(false);
    expect(m.isKidDenied('k1')).toBe(false);
  });

  it('follows client and kid entries over the stream, and skips entry types it does not know without dropping it', async () => {
    let stream: http.ServerResponse | undefined;
    let streams = 0;
    answer = (req, res) => {
      if (req.url?.startsWith('/deny-list/events')) {
        streams++;
        stream = res;
        res.writeHead(200, { 'content-type': 'text/event-stream' });
        res.write(': hello\n\n');
        return;
      }
      res.setHeader('content-type', 'application/json').end(page([], '1'));
    };
    const dropped: string[] = [];
    const m = new DenyListMirror({ url, clientId: 'todo-api', clientSecret: 's' }, { now: () => Date.now(), clockToleranceSeconds: 0, onKidDenied: (kid) => dropped.push(kid) });
    mirrors.push(m);
    await m.whenLoaded();
    await eventually(() => expect(stream).toBeDefined());
    const send = (id: number, entry: unknown) => stream!.write(`id: ${id}\nevent: deny\ndata: ${typeof entry === 'string' ? entry : JSON.stringify(entry)}\n\n`);
    send(2, { type: 'audience', value: 'todo-api', expires_at: now() + 60 }); // a type from a later version
    send(3, { type: 'client', value: 'web', expires_at: now() + 60 }); // a client entry without issued_before
    send(4, { type: 'kid', value: 7, expires_at: now() + 60 });
    send(5, 'not json');
    send(6, { type: 'client', value: 'web', issued_before: 1000, expires_at: now() + 60 });
    send(7, { type: 'kid', value: 'k1', expires_at: now() + 60 });
    await eventually(() => expect(m.isKidDenied('k1')).toBe(true));
    expect(m.isDenied({ client_id: 'web', iat: 1000 })).toBe(true);
    expect(dropped).toEqual(['k1']);
    expect(streams).toBe(1);
  });

  it('drops entries that have already expired and skips entries it does not understand', async () => {
    answer = (req, res) => {
      const entries = req.url?.includes('after=') ? [] : [
        { type: 'jti', value: 'old', expires_at: now() - 10 },
        { type: 'jti', value: 'live', expires_at: now() + 60 },
        { type: 'aud', value: 'x', expires_at: now() + 60 },
        { type: 'sub', value: 'no-issued-before', expires_at: now() + 60 },
        { type: 'client', value: 'no-issued-before', expires_at: now() + 60 },
        { type: 'kid', value: null, expires_at: now() + 60 },
        { type: 'jti', value: 42, expires_at: now() + 60 },
        'garbage',
      ];
      res.setHeader('content-type', 'application/json').end(page(entries));
    };
    const m = mirror();
    await m.whenLoaded();
    expect(m.isDenied({ jti: 'old' })).toBe(false);
    expect(m.isDenied({ jti: 'live' })).toBe(true);
    expect(m.isDenied({ sub: 'no-issued-before', iat: 1 })).toBe(false);
    expect(m.isDenied({ client_id: 'no-issued-before', iat: 1 })).toBe(false);
  });

  it('keeps an entry for clockTolerance past its expiry (a token is accepted that long past exp)', async () => {
    answer = (req, res) => res.setHeader('content-type', 'application/json').end(page(req.url?.includes('after=') ? [] : [{ type: 'jti', value: 'j', expires_at: now() - 2 }]));
    const m = mirror({ clockToleranceSeconds: 30 });
    await m.whenLoaded();
    expect(m.isDenied({ jti: 'j' })).toBe(true);
  });

  it('polls an unchanged cursor with If-None-Match and treats 304 as a successful sync', async () => {
    const seen: (string | undefined)[] = [];
    answer = (req, res) => {
      seen.push(req.headers['if-none-match'] as string | undefined);
      if (req.headers['if-none-match'] === '"e1"') {
        res.statusCode = 304;
        res.end();
        return;
      }
      res.setHeader('etag', '"e1"').setHeader('content-type', 'application/json').end(page([]));
    };
    const m = mirror({ pollInterval: 0.02 });
    await m.whenLoaded();
    await eventually(() => expect(seen.length).toBeGreaterThanOrEqual(4));
    // the first poll moves from the start of the feed to ?after=cursor; from then on the URL repeats
    expect(seen.slice(2).every((h) => h === '"e1"')).toBe(true);
    expect(m.fresh).toBe(true);
  });

  it('does not trust a feed that answers something other than a page', async () => {
    answer = (_req, res) => res.setHeader('content-type', 'application/json').end('{"entries":"no"}');
    const m = mirror();
    await expect(m.whenLoaded()).rejects.toThrow(/not a feed page/);
    expect(m.fresh).toBe(false);
  });
});
