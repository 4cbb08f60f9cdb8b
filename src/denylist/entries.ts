// Deny-list entries as the feed shows them (INTERFACE.md), and the feed's cursors.
import type { DenyListRow } from '../store/schema.js';

export type { NewDenyEntry } from '../store/denyList.js';

/** An entry as the feed shows it (INTERFACE.md). */
export type FeedEntry =
  | { type: 'jti' | 'sid' | 'kid'; value: string; expires_at: number }
  | { type: 'sub' | 'client'; value: string; issued_before: number; expires_at: number };

export interface FeedEvent {
  cursor: string;
  entry: FeedEntry;
}

export interface FeedPage {
  cursor: string;
  entries: FeedEntry[];
}

/** Entries a page (GET /deny-list) or a pull from the store holds at most. */
export const PAGE = 1000;

export function toFeedEntry(row: Pick<DenyListRow, 'type' | 'value' | 'issued_before' | 'expires_at'>): FeedEntry {
  return row.type === 'sub' || row.type === 'client'
    ? { type: row.type, value: row.value, issued_before: Number(row.issued_before ?? 0), expires_at: Number(row.expires_at) }
    : { type: row.type, value: row.value, expires_at: Number(row.expires_at) };
}

/** Cursors are opaque to clients; today they are the entry id in decimal. */
export function parseCursor(text: string | undefined): number | undefined {
  if (text === undefined) return 0;
  return /^\d{1,15}$/.test(text) ? Number(text) : undefined;
}
