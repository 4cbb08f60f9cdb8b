// The one rule for where a reader of the deny-list feed resumes, for GET /deny-list and its stream.
import { type DenyList, parseCursor } from '../denylist/denyList.js';
import { InvalidRequest } from '../oauth/errors.js';

/**
 * Where a reader of the feed resumes (GET /deny-list `after`, the stream's Last-Event-ID): a cursor
 * of this feed, never one past its newest entry, which would silently skip what comes next.
 */
export async function feedCursor(denyList: Pick<DenyList, 'isPastHead'>, text: string | undefined, name: string): Promise<number> {
  const after = parseCursor(text);
  if (after === undefined) throw new InvalidRequest(`${name} is not a cursor of this feed`);
  if (await denyList.isPastHead(after)) throw new InvalidRequest(`${name} is beyond the newest entry of this feed: start again without it`);
  return after;
}
