// The verifier's Server-Sent Events parser (WHATWG HTML §9.2.6), fed the way a socket delivers:
// in arbitrary chunks.
import { describe, expect, it } from 'vitest';
import { type SseEvent, SseParser, readEventStream } from '../../src/verifier/sse.js';

function parse(chunks: string[], lastEventId = '') {
  const events: SseEvent[] = [];
  const retries: number[] = [];
  let activity = 0;
  const parser = new SseParser({ onEvent: (e) => events.push(e), onRetry: (ms) => retries.push(ms), onActivity: () => activity++ }, lastEventId);
  for (const c of chunks) parser.push(c);
  return { events, retries, activity };
}

describe('SseParser', () => {
  it('dispatches an event at a blank line with its id, type and data', () => {
    expect(parse(['id: 7\nevent: deny\ndata: {"a":1}\n\n']).events).toEqual([{ id: '7', type: 'deny', data: '{"a":1}' }]);
  });

  it('joins multi-line data with newlines and defaults the type to message', () => {
    expect(parse(['data: one\ndata: two\n\n']).events).toEqual([{ id: '', type: 'message', data: 'one\ntwo' }]);
  });

  it('reassembles lines split across chunks, including a CRLF split between chunks', () => {
    const { events } = parse(['id: 1\r', '\nevent: de', 'ny\r\ndata: x', '\r', '\n\r\n']);
    expect(events).toEqual([{ id: '1', type: 'deny', data: 'x' }]);
  });

  it('accepts CR-only line endings', () => {
    expect(parse(['data: a\rdata: b\r\r']).events).toEqual([{ id: '', type: 'message', data: 'a\nb' }]);
  });

  it('ignores comments (heartbeats) but reports them as activity', () => {
    const r = parse([': heartbeat\n\n', ': heartbeat\n\n']);
    expect(r.events).toEqual([]);
    expect(r.activity).toBe(2);
  });

  it('keeps the last event id across events and from the constructor', () => {
    const { events } = parse(['data: a\n\nid: 9\ndata: b\n\ndata: c\n\n'], '5');
    expect(events.map((e) => e.id)).toEqual(['5', '9', '9']);
  });

  it('reports a numeric retry and ignores a malformed one', () => {
    expect(parse(['retry: 1500\n\nretry: soon\n\n']).retries).toEqual([1500]);
  });

  it('does not dispatch an event without data, nor a partial event at the end of the stream', () => {
    expect(parse(['event: deny\n\ndata: half']).events).toEqual([]);
  });

  it('takes a field without a colon as a field with an empty value, and ignores unknown fields', () => {
    expect(parse(['data\nfoo: bar\n\n']).events).toEqual([{ id: '', type: 'message', data: '' }]);
  });

  it('ignores an id containing NUL', () => {
    expect(parse(['id: a\0b\ndata: x\n\n']).events[0]!.id).toBe('');
  });

  it('reads a byte stream whose multi-byte characters are split across chunks', async () => {
    const bytes = Buffer.from('data: café\n\n');
    const body = new ReadableStream<Uint8Array>({
      start(c) {
        c.enqueue(bytes.subarray(0, 10));
        c.enqueue(bytes.subarray(10));
        c.close();
      },
    });
    const events: SseEvent[] = [];
    await readEventStream(body, { onEvent: (e) => events.push(e) });
    expect(events).toEqual([{ id: '', type: 'message', data: 'café' }]);
  });
});
