// Test doubles for roomcast.js unit tests: a clock that moves only when told,
// and a WebSocket whose server side the test plays.

export class FakeClock {
  constructor(start = 1_800_000_000_000) {
    this.t = start;
    this.timers = new Map();
    this.nextId = 1;
  }
  now() { return this.t; }
  setTimeout(fn, ms) {
    const id = this.nextId++;
    this.timers.set(id, { at: this.t + Math.max(0, ms), fn });
    return id;
  }
  clearTimeout(id) { this.timers.delete(id); }
  /** Moves time forward, running due timers in order. */
  async advance(ms) {
    const end = this.t + ms;
    for (;;) {
      const due = [...this.timers.entries()].filter(([, t]) => t.at <= end).sort((a, b) => a[1].at - b[1].at)[0];
      if (!due) break;
      this.timers.delete(due[0]);
      this.t = Math.max(this.t, due[1].at);
      due[1].fn();
      await flush();
    }
    this.t = end;
    await flush();
  }
}

export async function flush() {
  for (let i = 0; i < 5; i++) await new Promise((r) => setImmediate(r));
}

export class FakeWebSocket {
  static instances = [];
  constructor(url) {
    this.url = url;
    this.readyState = 0;
    this.sent = [];
    FakeWebSocket.instances.push(this);
  }
  static last() { return FakeWebSocket.instances[FakeWebSocket.instances.length - 1]; }
  static reset() { FakeWebSocket.instances = []; }
  send(data) { this.sent.push(JSON.parse(data)); }
  close(code = 1000, reason = '') {
    if (this.readyState === 3) return;
    this.readyState = 3;
    this.closedWith = { code, reason };
  }
  // The server's side:
  accept() { this.readyState = 1; this.onopen?.(); }
  receive(frame) { this.onmessage?.({ data: typeof frame === 'string' ? frame : JSON.stringify(frame) }); }
  drop(code = 1006, reason = '') { this.readyState = 3; this.onclose?.({ code, reason }); }
  /** The last frame the client sent with this action. */
  lastSent(action) { return [...this.sent].reverse().find((f) => f.action === action); }
  /** Answers the client's hello. */
  welcome(connectionId = 'c1', user = { user: 'alice', name: 'Alice' }, limits = {}) {
    const hello = this.lastSent('hello');
    this.receive({ type: 'welcome', connectionId, user, exp: 4_000_000_000, limits, ref: hello.ref });
  }
}
