// The live stream: `GET /console/stream?interval_ms=N` read with fetch() (EventSource cannot send
// the Authorization header), its body parsed as server-sent events. A dropped stream is not
// reopened: that would send the token, unasked, to whatever listens at this address next (the
// host stopped, and another program may have taken its port).

import { authHeaders } from './util.js';

/**
 * A server-sent events parser (the WHATWG "event stream" format, the parts the host uses):
 * `event:` and `data:` fields, several `data:` lines joined by "\n", `:` comments ignored, a blank
 * line ends an event. Text arrives in arbitrary chunks: an event, a line, even a CR LF pair may
 * be split across two of them, so incomplete lines wait in `buffer`.
 */
export class SseParser {
  constructor(onEvent) {
    this.onEvent = onEvent;
    this.buffer = '';
    this.reset();
  }

  reset() {
    this.event = '';
    this.data = [];
  }

  /** Feeds decoded text. */
  push(text) {
    this.buffer += text;
    let start = 0;
    for (;;) {
      const cr = this.buffer.indexOf('\r', start);
      const lf = this.buffer.indexOf('\n', start);
      let end = cr < 0 ? lf : lf < 0 ? cr : Math.min(cr, lf);
      if (end < 0) break;
      let next = end + 1;
      if (this.buffer[end] === '\r') {
        // A CR at the very end may be the first half of a CR LF: wait for the next chunk.
        if (end === this.buffer.length - 1) break;
        if (this.buffer[end + 1] === '\n') next = end + 2;
      }
      this.line(this.buffer.slice(start, end));
      start = next;
    }
    this.buffer = this.buffer.slice(start);
  }

  /** The stream ended: a CR held back at the very end was a whole line end. */
  end() {
    if (this.buffer.endsWith('\r')) this.push('\n');
    this.buffer = '';
  }

  line(line) {
    if (line === '') {
      if (this.data.length > 0) this.onEvent(this.event || 'message', this.data.join('\n'));
      this.reset();
      return;
    }
    if (line.startsWith(':')) return; // a comment (keep-alive)
    const colon = line.indexOf(':');
    const field = colon < 0 ? line : line.slice(0, colon);
    let value = colon < 0 ? '' : line.slice(colon + 1);
    if (value.startsWith(' ')) value = value.slice(1);
    if (field === 'event') this.event = value;
    else if (field === 'data') this.data.push(value);
    // `id` and `retry` are not used: a dropped stream is not resumed (see openStream).
  }
}

/**
 * Opens the stream and keeps it open until `close()` or until it ends.
 *
 * Callbacks: `onOpen()` when the host answered 200, `onSnapshot(snapshot, first)` per snapshot
 * (`first`: the first of this connection, which carries the full PnL curves and the last 200
 * audit records), `onStatus(state, detail)` with `connecting` | `live` | `ended` (the
 * stream dropped or could not be opened; `detail` says why; it is not reopened),
 * `onUnauthorized()` on a 401, `onRefused(status, text)` on another refusal (then `ended`).
 */
export function openStream({ intervalMs, onOpen, onSnapshot, onStatus, onUnauthorized, onRefused }) {
  let controller = null;
  let closed = false;
  let watchdog = null;
  // No snapshot for this long means a hung connection (a proxy, a sleeping laptop): the stream
  // ends (and with it the session: app.js forgets the token; nothing reconnects by itself).
  const staleMs = Math.max(5000, intervalMs * 10);

  function armWatchdog() {
    clearTimeout(watchdog);
    watchdog = setTimeout(() => controller && controller.abort(new Error('no snapshot for a while')), staleMs);
  }

  async function connect() {
    if (closed) return;
    controller = new AbortController();
    onStatus('connecting', '');
    let why = 'the stream ended';
    try {
      armWatchdog();
      const response = await fetch(`/console/stream?interval_ms=${intervalMs}`, {
        headers: authHeaders({ Accept: 'text/event-stream' }),
        cache: 'no-store',
        signal: controller.signal,
      });
      if (response.status === 401) {
        closed = true;
        clearTimeout(watchdog);
        onUnauthorized();
        return;
      }
      if (!response.ok || !response.body) {
        const text = await response.text().catch(() => '');
        why = `the host answered ${response.status}`;
        onRefused(response.status, text);
      } else {
        onOpen();
        await read(response.body);
      }
    } catch (e) {
      if (closed) return;
      why = (controller.signal.reason && controller.signal.reason.message) || e.message || String(e);
    }
    clearTimeout(watchdog);
    if (closed) return;
    closed = true;
    onStatus('ended', why);
  }

  async function read(body) {
    const reader = body.getReader();
    const decoder = new TextDecoder('utf-8');
    let first = true;
    const parser = new SseParser((event, data) => {
      if (event !== 'snapshot') return;
      let snapshot;
      try {
        snapshot = JSON.parse(data);
      } catch (e) {
        console.warn('an unreadable snapshot was skipped', e);
        return;
      }
      armWatchdog();
      onStatus('live', '');
      onSnapshot(snapshot, first);
      first = false;
    });
    try {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        // stream: true keeps a UTF-8 character split across two chunks whole.
        parser.push(decoder.decode(value, { stream: true }));
      }
      parser.push(decoder.decode());
      parser.end();
    } finally {
      reader.releaseLock();
    }
  }

  connect();
  return {
    close() {
      closed = true;
      clearTimeout(watchdog);
      if (controller) controller.abort(new Error('closed'));
    },
  };
}
