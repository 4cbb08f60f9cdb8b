// Errors of HTTP itself (404, 405, 501, 413) and the rendering of every error as RFC 6749 §5.2 JSON.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { BadRequest, NotFound, PayloadTooLarge, UnsupportedMethod, asOAuthError, errorBody } from '../../src/http/errors.js';
import { TooManyStreams } from '../../src/http/sse.js';
import * as oauth from '../../src/oauth/errors.js';
import { LogCapture, type TestApp, createTestApp } from '../helpers.js';

// RFC 6749 §5.2: error_description is %x20-21 / %x23-5B / %x5D-7E
const DESCRIPTION_CHARS = /^[\x20-\x21\x23-\x5B\x5D-\x7E]+$/;
// a detail no answer may carry as it is: a quote, a backslash, a control character, non-ASCII, and length
const NASTY = `"\\\n\u0000été ${'x'.repeat(20_000)}`;

const every: Array<[string, oauth.OAuthError]> = [
  ['InvalidRequest', new oauth.InvalidRequest(NASTY)],
  ['InvalidClient', new oauth.InvalidClient(NASTY)],
  ['InvalidGrant', new oauth.InvalidGrant(NASTY)],
  ['UnauthorizedClient', new oauth.UnauthorizedClient(NASTY)],
  ['UnsupportedGrantType', new oauth.UnsupportedGrantType(NASTY)],
  ['InvalidScope', new oauth.InvalidScope(NASTY)],
  ['UnsupportedTokenType', new oauth.UnsupportedTokenType(NASTY)],
  ['TooManyAttempts', new oauth.TooManyAttempts(NASTY, 3)],
  ['TemporarilyUnavailable', new oauth.TemporarilyUnavailable(NASTY, 1)],
  ['TooManyStreams', new TooManyStreams(NASTY)],
  ['NotFound', new NotFound(NASTY)],
  ['UnsupportedMethod', new UnsupportedMethod(405, NASTY)],
  ['PayloadTooLarge', new PayloadTooLarge(NASTY)],
  ['BadRequest', new BadRequest(400, NASTY)],
];

describe('error rendering', () => {
  it.each(every)('renders %s with an error_description in the RFC 6749 §5.2 character set, at most 200 characters', (_name, error) => {
    const body = errorBody(error);
    expect(Object.keys(body).sort()).toEqual(['error', 'error_description']);
    expect(body.error).toMatch(/^[a-z_]+$/);
    expect(body.error_description).toMatch(DESCRIPTION_CHARS);
    expect(body.error_description.length).toBeLessThanOrEqual(200);
  });

  it('tells the detail only for errors about the request itself', () => {
    const told = every.filter(([, e]) => e.description === e.detail).map(([name]) => name);
    expect(told.sort()).toEqual(['InvalidRequest', 'InvalidScope', 'PayloadTooLarge', 'UnsupportedGrantType']);
  });

  it('keeps the status of an http-errors 4xx without writing to a readonly field', () => {
    const thrown = Object.assign(new Error('Unsupported Media Type'), { status: 415, expose: true });
    const error = asOAuthError(thrown);
    expect(error).toBeInstanceOf(BadRequest);
    expect(error).toMatchObject({ status: 415, error: 'invalid_request', detail: 'Unsupported Media Type', description: 'the request is malformed' });
    expect(new UnsupportedMethod(501, 'PROPFIND').status).toBe(501);
  });

  it('leaves anything else to the 500 path', () => {
    expect(asOAuthError(new Error('the store went away'))).toBeUndefined();
    expect(asOAuthError(Object.assign(new Error('upstream'), { status: 502 }))).toBeUndefined();
    expect(asOAuthError(null)).toBeUndefined();
  });
});

describe('HTTP errors', () => {
  let t: TestApp;
  let logs: LogCapture;

  beforeEach(async () => {
    logs = new LogCapture();
    t = await createTestApp({ logs, config: { server: { bodyLimitBytes: 1024 } } });
  });
  afterEach(() => t.close());

  const lastRequestLine = () =>
    logs.lines
      .map((l) => JSON.parse(l) as Record<string, unknown>)
      .filter((l) => l.msg === 'request')
      .at(-1);

  it('answers an unknown path 404 not_found', async () => {
    const res = await t.request.get('/nowhere');
    expect(res.status).toBe(404);
    expect(res.body).toEqual({ error: 'not_found', error_description: 'no such endpoint' });
    expect(lastRequestLine()).toMatchObject({ status: 404, error: 'not_found', detail: 'no route matches the path' });
  });

  it('answers a method the route lacks 405 invalid_request and keeps the Allow header (RFC 9110 §15.5.6)', async () => {
    const res = await t.request.delete('/token');
    expect(res.status).toBe(405);
    expect(res.headers.allow).toContain('POST');
    expect(res.body).toEqual({ error: 'invalid_request', error_description: 'the endpoint does not support this method' });
    expect(lastRequestLine()).toMatchObject({ status: 405, error: 'invalid_request', detail: 'DELETE is not supported on /token' });
  });

  it('answers a method the server does not implement 501 invalid_request', async () => {
    const res = await t.request.propfind('/healthz');
    expect(res.status).toBe(501);
    expect(res.body).toEqual({ error: 'invalid_request', error_description: 'the endpoint does not support this method' });
    expect(lastRequestLine()).toMatchObject({ status: 501, error: 'invalid_request', detail: 'PROPFIND is not supported on /healthz' });
  });

  it('answers an oversized body 413 invalid_request and says the limit', async () => {
    const res = await t.request.post('/token').type('form').send(`grant_type=${'x'.repeat(2048)}`);
    expect(res.status).toBe(413);
    expect(res.body).toEqual({ error: 'invalid_request', error_description: 'the body is larger than 1024 bytes' });
  });
});
