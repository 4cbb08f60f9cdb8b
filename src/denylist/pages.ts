// GET /deny-list pages, rendered from the feed's in-memory entries (not the table) and cached with
// their ETag: every resource server polls the same few pages, which change only when the feed does.
import crypto from 'node:crypto';
import { type FeedEntry, type FeedPage, PAGE } from './entries.js';
import type { Feed } from './feed.js';

/** One page of live entries after a cursor (0: from the start). */
export function pageAfter(feed: Pick<Feed, 'entries' | 'cursor'>, after: number, nowSeconds: number): FeedPage {
  const log = feed.entries;
  const entries: FeedEntry[] = [];
  let cursor = after;
  // ids only grow: binary search for the first entry after the cursor
  let lo = 0;
  let hi = log.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if ((log[mid]?.id ?? 0) <= after) lo = mid + 1;
    else hi = mid;
  }
  for (let i = lo; i < log.length && entries.length < PAGE; i++) {
    const item = log[i];
    if (!item || item.entry.expires_at <= nowSeconds) continue;
    entries.push(item.entry);
    cursor = item.id;
  }
  if (entries.length === 0) cursor = after === 0 ? feed.cursor : after;
  return { cursor: String(cursor), entries };
}

export class FeedPages {
  private rendered = new Map<string, { body: Buffer; etag: string }>();

  constructor(private readonly feed: Pick<Feed, 'entries' | 'cursor' | 'version'>) {}

  /**
   * The page as its JSON body and ETag, rendered once per change of the feed (or second) and
   * reused. The body is bytes: a page of a hundred entries is about 10 kB, which Node would
   * otherwise encode again for every response.
   */
  render(after: number, nowSeconds: number): { body: Buffer; etag: string } {
    const key = `${after}:${this.feed.version}:${nowSeconds}`;
    const hit = this.rendered.get(key);
    if (hit) return hit;
    const body = Buffer.from(JSON.stringify(pageAfter(this.feed, after, nowSeconds)));
    const etag = `"${crypto.createHash('sha256').update(body).digest('base64url').slice(0, 27)}"`;
    if (this.rendered.size >= 64) this.rendered.clear();
    this.rendered.set(key, { body, etag });
    return { body, etag };
  }
}
