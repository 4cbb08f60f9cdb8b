import { describe, expect, it } from 'vitest';
import { etagMatches } from '../../src/http/etag.js';
import { createTestApp } from '../helpers.js';

describe('If-None-Match (RFC 9110 §13.1.2)', () => {
  it('matches a tag in a list, weakly, and *', () => {
    expect(etagMatches('"a"', '"a"')).toBe(true);
    expect(etagMatches('W/"a"', '"a"')).toBe(true);
    expect(etagMatches('"x", "a"', '"a"')).toBe(true);
    expect(etagMatches('*', '"a"')).toBe(true);
    expect(etagMatches('"b"', '"a"')).toBe(false);
    expect(etagMatches('', '"a"')).toBe(false);
  });

  it('answers 304 for the JWKS when a cache sends a list or a weak tag', async () => {
    const t = await createTestApp();
    try {
      const first = await t.request.get('/.well-known/jwks.json');
      const etag = first.headers.etag as string;
      expect((await t.request.get('/.well-known/jwks.json').set('If-None-Match', `"stale", ${etag}`)).status).toBe(304);
      expect((await t.request.get('/.well-known/jwks.json').set('If-None-Match', `W/${etag}`)).status).toBe(304);
      expect((await t.request.get('/.well-known/jwks.json').set('If-None-Match', '"stale"')).status).toBe(200);
    } finally {
      await t.close();
    }
  });
});
