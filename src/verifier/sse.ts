// A small Server-Sent Events parser (WHATWG HTML §9.2.6, "Interpreting an event stream") over
// fetch's ReadableStream, so the verifier needs no EventSource polyfill and can send the
// Authorization header that EventSource cannot.

export interface SseEvent {
  /** The last event ID in effect when the event was dispatched ('' when none was ever set). */
  id: string;
  /** The `event:` field, `message` when absent. */
  type: string;
  data: string;
}

export interface SseHandlers {
  onEvent(event: SseEvent): void;
  /** Any line received, including comments (`: heartbeat`): proof the connection is alive. */
  onActivity?(): void;
  /** A `retry:` field: the server's reconnection time in milliseconds. */
  onRetry?(ms: number): void;
}

export class SseParser {
  private buffer = '';
  private data: string[] = [];
  private type = '';
  private lastEventId: string;
  private pendingCr = false;

  constructor(
    private readonly handlers: SseHandlers,
    lastEventId = '',
  ) {
    this.lastEventId = lastEventId;
  }

  /** Feeds decoded text; complete lines are interpreted, a partial line waits for more. */
  push(text: string): void {
    if (text.length === 0) return;
    this.handlers.onActivity?.();
    let chunk = text;
    // a CRLF split across two chunks: the LF is the tail of a line already ended by the CR
    if (this.pendingCr && chunk.startsWith('\n')) chunk = chunk.slice(1);
    this.pendingCr = false;
    this.buffer += chunk;
    let start = 0;
    for (let i = 0; i < this.buffer.length; i++) {
      const c = this.buffer.charCodeAt(i);
      if (c !== 10 && c !== 13) continue;
      this.line(this.buffer.slice(start, i));
      if (c === 13) {
        if (i + 1 < this.buffer.length) {
          if (this.buffer.charCodeAt(i + 1) === 10) i++;
        } else {
          this.pendingCr = true;
        }
      }
      start = i + 1;
    }
    this.buffer = this.buffer.slice(start);
  }

  private line(line: string): void {
    if (line === '') return this.dispatch();
    if (line.startsWith(':')) return;
    const colon = line.indexOf(':');
    const field = colon === -1 ? line : line.slice(0, colon);
    let value = colon === -1 ? '' : line.slice(colon + 1);
    if (value.startsWith(' ')) value = value.slice(1);
    switch (field) {
      case 'event':
        this.type = value;
        break;
      case 'data':
        this.data.push(value);
        break;
      case 'id':
        if (!value.includes('\0')) this.lastEventId = value;
        break;
      case 'retry':
        if (/^\d+$/.test(value)) this.handlers.onRetry?.(Number(value));
        break;
      default:
        // unknown fields are ignored (§9.2.6)
        break;
    }
  }

  private dispatch(): void {
    const data = this.data;
    const type = this.type;
    this.data = [];
    this.type = '';
    if (data.length === 0) return;
    this.handlers.onEvent({ id: this.lastEventId, type: type || 'message', data: data.join('\n') });
  }
}

/** Reads an event stream to its end (or until the signal aborts), feeding a parser. */
export async function readEventStream(body: ReadableStream<Uint8Array>, handlers: SseHandlers, lastEventId = ''): Promise<void> {
  const parser = new SseParser(handlers, lastEventId);
  const decoder = new TextDecoder('utf-8');
  const reader = body.getReader();
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      parser.push(decoder.decode(value, { stream: true }));
    }
    parser.push(decoder.decode());
  } catch (e) {
    await reader.cancel(e).catch(() => {});
    throw e;
  } finally {
    reader.releaseLock();
  }
}
