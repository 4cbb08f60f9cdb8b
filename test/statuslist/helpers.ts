// Reading Tollgate's status lists the way an outside verifier does: the token's `status` claim,
// GET on its uri, the list's `lst` decoded by @sd-jwt/jwt-status-list.
import { StatusList } from '@sd-jwt/jwt-status-list';
import supertest from 'supertest';
import { type TestApp, decodeJwt } from '../helpers.js';

export interface StatusRef {
  idx: number;
  uri: string;
}

export function statusOf(accessToken: string): StatusRef {
  const status = decodeJwt(accessToken).payload.status as { status_list: StatusRef } | undefined;
  if (!status) throw new Error('the access token has no status claim');
  return status.status_list;
}

/** The served list at `uri` from this app (or any supertest agent), decoded by an outside library. */
export async function servedList(t: TestApp | ReturnType<typeof supertest>, uri: string): Promise<StatusList> {
  const request = 'request' in t ? t.request : t;
  const res = await request.get(new URL(uri).pathname).buffer(true).parse((r, cb) => {
    let text = '';
    r.setEncoding('utf8');
    r.on('data', (c: string) => (text += c));
    r.on('end', () => cb(null, text));
  });
  if (res.status !== 200) throw new Error(`GET ${uri} answered ${res.status}`);
  const { payload } = decodeJwt(res.body as string);
  const list = payload.status_list as { bits: 1; lst: string };
  return StatusList.decompressStatusList(list.lst, list.bits);
}

/** The status (0 VALID, 1 INVALID) the served list gives this token. */
export async function statusOfToken(t: TestApp | ReturnType<typeof supertest>, accessToken: string): Promise<number> {
  const ref = statusOf(accessToken);
  return (await servedList(t, ref.uri)).getStatus(ref.idx);
}
