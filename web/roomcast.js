// roomcast.js: the browser client for Roomcast. An ES module with no
// dependencies and no build step. See roomcast.d.ts for the API and
// docs/protocol.md for the wire protocol.
//
// What it does for the app:
// - reconnects with exponential backoff and full jitter (500 ms base, 30 s
//   cap, reset after 30 s of stable connection), and reconnects on its own
//   before API Gateway's 2 h cut;
// - re-joins rooms after a reconnect with `since` = the last seq seen, so
//   missed messages arrive in order with none lost;
// - delivers room messages in seq order, each (room, seq) once;
// - tells a room whose stream started again (a new `epoch`) from one it
//   has seen: drops its place there, follows the new stream from seq 1 and
//   says 'restart', where seqs it had seen would otherwise hide new ones;
// - keeps unacknowledged sends in an outbox and resends them with the same
//   id after a reconnect (the server's idempotency makes that exactly-once);
// - heartbeats only when idle, refreshes the token before `exp`;
// - never throws out of its event handlers: problems go to 'error'.

/** An error with a machine-readable code (the server's, or the client's own). */
export class RoomcastError extends Error {
  constructor(code, message, detail = {}) {
    super(message);
    this.name = 'RoomcastError';
    this.code = code;
    Object.assign(this, detail);
  }
}

/** Full-jitter exponential backoff: a random delay in [0, min(cap, base·2^attempt)). */
export function backoffDelay(attempt, { base = 500, cap = 30000, random = Math.random } = {}) {
  const ceiling = Math.min(cap, base * 2 ** Math.min(attempt, 30));
  return Math.floor(random() * ceiling);
}

/** Reads `exp` (seconds) from a JWT without verifying it; null if unreadable. */
export function tokenExpiry(token) {
  try {
    const part = String(token).split('.')[1];
    if (!part) return null;
    const json = atob(part.replace(/-/g, '+').replace(/_/g, '/').padEnd(Math.ceil(part.length / 4) * 4, '='));
    const exp = JSON.parse(json).exp;
    return typeof exp === 'number' ? exp : null;
  } catch {
    return null;
  }
}

const DEFAULTS = {
  heartbeatMs: 5 * 60 * 1000,
  backoffBaseMs: 500,
  backoffCapMs: 30000,
  stableAfterMs: 30000,
  maxConnectionMs: 110 * 60 * 1000,
  refreshBeforeExpMs: 60 * 1000,
  requestTimeoutMs: 15000,
  outboxLimit: 100,
  typingIdleMs: 3000,
  gapWaitMs: 1000,
};

const systemClock = {
  now: () => Date.now(),
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  clearTimeout: (t) => clearTimeout(t),
};

let idCounter = 0;
function newId() {
  idCounter += 1;
  const rand = globalThis.crypto?.randomUUID?.() ?? `${Date.now().toString(36)}-${Math.random().toString(36).slice(2)}`;
  return `${rand.slice(0, 24)}-${idCounter}`;
}

export class Roomcast {
  /**
   * @param {object} options see roomcast.d.ts
   */
  constructor(options) {
    if (!options || typeof options.url !== 'string') throw new TypeError('Roomcast: options.url is required');
    if (typeof options.token !== 'function') throw new TypeError('Roomcast: options.token must be a function returning a token');
    this.options = { ...DEFAULTS, ...options };
    this.WebSocket = options.WebSocket ?? globalThis.WebSocket;
    this.clock = options.clock ?? systemClock;
    this.random = options.random ?? Math.random;
    this.listeners = new Map();
    this.state = 'idle';
    this.connectionId = null;
    this.user = null;
    this.ws = null;
    this.attempt = 0;
    this.nextRef = 1;
    this.pending = new Map(); // ref → { resolve, reject, timer }
    this.rooms = new Map(); // room → { lastSeq, joined, wanted, members: Map, buffer: Map, gapTimer }
    this.outbox = []; // { id, room, data, resolve, reject }, oldest first
    this.inflight = null; // the outbox entry awaiting its ack
    this.timers = {};
    this.lastSentAt = 0;
    this.typingState = new Map(); // room → { active, timer }
    this.closedByUser = false;
    this.tokenExp = null;
    this.seenDirect = new Set();
  }

  // ---- events ------------------------------------------------------------

  /** Subscribes to an event; returns an unsubscribe function. */
  on(event, fn) {
    if (!this.listeners.has(event)) this.listeners.set(event, new Set());
    this.listeners.get(event).add(fn);
    return () => this.off(event, fn);
  }

  off(event, fn) {
    this.listeners.get(event)?.delete(fn);
  }

  emit(event, payload) {
    for (const fn of this.listeners.get(event) ?? []) {
      try {
        fn(payload);
      } catch (err) {
        // An app handler's bug must not break the client; report it once.
        if (event !== 'error') this.emit('error', new RoomcastError('listener_failed', `a '${event}' listener threw: ${err?.message ?? err}`, { cause: err }));
        else globalThis.console?.error?.('roomcast: an error listener threw', err);
      }
    }
  }

  setState(state, detail = {}) {
    this.state = state;
    this.emit('state', { state, ...detail });
  }

  // ---- connection ----------------------------------------------------------

  /** Opens the connection (and keeps it open until close()). */
  connect() {
    this.closedByUser = false;
    this.watchNetwork();
    if (this.ws || this.timers.retry) return;
    this.open();
  }

  /**
   * Follows the browser's online/offline events: a socket can sit silently
   * dead for minutes after the network goes, so going offline counts as a
   * disconnect at once, and coming back reconnects without waiting.
   */
  watchNetwork() {
    if (this.networkWatched || typeof globalThis.addEventListener !== 'function') return;
    this.networkWatched = true;
    globalThis.addEventListener('offline', () => {
      if (this.closedByUser) return;
      const ws = this.ws;
      this.ws = null;
      if (ws) {
        try { ws.close(4001, 'offline'); } catch { /* ignore */ }
      }
      this.afterDisconnect('the browser went offline');
    });
    globalThis.addEventListener('online', () => {
      if (this.closedByUser || this.ws) return;
      this.clearTimer('retry');
      this.attempt = 0;
      this.open();
    });
  }

  /** Closes for good: no reconnect; pending requests are rejected. */
  close() {
    this.closedByUser = true;
    this.clearTimers();
    const ws = this.ws;
    this.ws = null;
    if (ws) {
      try { ws.close(1000, 'client closed'); } catch { /* already closed */ }
    }
    this.failPending(new RoomcastError('closed', 'the client was closed'));
    for (const item of this.outbox) item.reject(new RoomcastError('closed', 'the client was closed'));
    this.outbox = [];
    this.setState('closed', { reason: 'closed by the app' });
  }

  async open() {
    this.setState(this.attempt === 0 ? 'connecting' : 'reconnecting', { attempt: this.attempt });
    let token;
    try {
      token = await this.options.token();
    } catch (err) {
      if (err instanceof RoomcastError && err.code === 'unauthorized') return this.stopUnauthorized(err.message);
      return this.scheduleReconnect(`token provider failed: ${err?.message ?? err}`);
    }
    if (this.closedByUser) return;
    const exp = tokenExpiry(token);
    if (exp !== null && exp * 1000 <= this.clock.now()) {
      return this.stopUnauthorized('the token provider returned an expired token');
    }
    this.tokenExp = exp;
    const sep = this.options.url.includes('?') ? '&' : '?';
    let ws;
    try {
      ws = new this.WebSocket(`${this.options.url}${sep}token=${encodeURIComponent(token)}`);
    } catch (err) {
      return this.scheduleReconnect(`cannot open a WebSocket: ${err?.message ?? err}`);
    }
    this.ws = ws;
    let opened = false;
    ws.onopen = () => {
      if (this.ws !== ws) return;
      opened = true;
      this.onOpen();
    };
    ws.onmessage = (event) => {
      if (this.ws === ws) this.onFrame(event.data);
    };
    ws.onerror = () => { /* the close event follows and carries the details */ };
    ws.onclose = (event) => {
      if (this.ws !== ws) return;
      this.ws = null;
      this.onClose(event, opened);
    };
  }

  onOpen() {
    this.lastSentAt = this.clock.now();
    this.request({ action: 'hello' })
      .then((welcome) => {
        this.connectionId = welcome.connectionId;
        this.user = welcome.user;
        // A third of the server's idle timeout at most: a client that only
        // receives must still refresh its room memberships, which lapse
        // one and a half idle timeouts after the client's last frame.
        const idleSecs = welcome.limits?.idleTimeoutSecs;
        this.heartbeatMs = idleSecs > 0 ? Math.min(this.options.heartbeatMs, (idleSecs * 1000) / 3) : this.options.heartbeatMs;
        this.setState('open', { connectionId: this.connectionId });
        this.emit('welcome', welcome);
        this.scheduleSessionTimers();
        this.rejoinAll();
      })
      .catch((err) => this.emit('error', err));
  }

  scheduleSessionTimers() {
    const { clock, options } = this;
    this.clearTimer('stable');
    this.timers.stable = clock.setTimeout(() => { this.attempt = 0; }, options.stableAfterMs);
    this.clearTimer('maxAge');
    this.timers.maxAge = clock.setTimeout(() => this.recycle('connection nearing the 2 h limit'), options.maxConnectionMs);
    this.scheduleHeartbeat();
    this.scheduleRefresh();
  }

  scheduleHeartbeat() {
    this.clearTimer('heartbeat');
    this.timers.heartbeat = this.clock.setTimeout(() => {
      // Only when this client has sent nothing for a while: what it
      // receives does not count, since only its own frames keep its room
      // memberships alive.
      const every = this.heartbeatMs ?? this.options.heartbeatMs;
      if (this.clock.now() - this.lastSentAt >= every - 1) {
        this.request({ action: 'heartbeat' }).catch(() => {});
      }
      this.scheduleHeartbeat();
    }, this.heartbeatMs ?? this.options.heartbeatMs);
  }

  scheduleRefresh() {
    this.clearTimer('refresh');
    if (this.tokenExp === null) return;
    const due = this.tokenExp * 1000 - this.options.refreshBeforeExpMs - this.clock.now();
    this.timers.refresh = this.clock.setTimeout(async () => {
      try {
        const token = await this.options.token();
        const authed = await this.request({ action: 'auth', token });
        this.tokenExp = authed.exp;
        for (const name of authed.left ?? []) {
          // The new token does not grant this room: the server has left it.
          const room = this.room(name);
          room.wanted = false;
          room.joined = false;
          this.emit('error', new RoomcastError('forbidden', `the refreshed token does not grant room ${name}; left it`, { room: name }));
        }
        this.scheduleRefresh();
      } catch (err) {
        this.emit('error', err instanceof RoomcastError ? err : new RoomcastError('refresh_failed', `token refresh failed: ${err?.message ?? err}`));
      }
    }, Math.max(0, due));
  }

  /** Reconnects now (used before API Gateway's maximum connection time). */
  recycle(reason) {
    const ws = this.ws;
    if (!ws) return;
    this.ws = null;
    try { ws.close(4000, 'recycle'); } catch { /* ignore */ }
    this.afterDisconnect(reason, 0);
  }

  onClose(event, opened) {
    const code = event?.code ?? 1006;
    const reason = event?.reason || '';
    if (code === 1009) {
      this.emit('error', new RoomcastError('message_too_big', 'the server closed the connection: a frame or message was too big (1009)', { closeCode: code }));
    }
    if (this.closedByUser) return;
    const why = opened ? `closed with ${code}${reason ? ` (${reason})` : ''}` : `handshake failed (${code})`;
    this.afterDisconnect(why);
  }

  afterDisconnect(reason, delayOverride) {
    this.connectionId = null;
    this.inflight = null;
    this.clearTimers();
    this.failPending(new RoomcastError('disconnected', `connection lost: ${reason}`), (p) => p.action !== 'send');
    for (const room of this.rooms.values()) {
      room.joined = false;
      room.members.clear();
    }
    this.scheduleReconnect(reason, delayOverride);
  }

  scheduleReconnect(reason, delayOverride) {
    if (this.closedByUser) return;
    const offline = globalThis.navigator && globalThis.navigator.onLine === false;
    if (offline && this.networkWatched) {
      this.clearTimer('retry');
      this.setState('offline', { reason }); // the 'online' event reconnects
      return;
    }
    const delay = delayOverride ?? backoffDelay(this.attempt, { base: this.options.backoffBaseMs, cap: this.options.backoffCapMs, random: this.random });
    this.attempt += 1;
    this.setState('reconnecting', { reason, retryInMs: delay, retryAt: this.clock.now() + delay, attempt: this.attempt });
    this.clearTimer('retry');
    this.timers.retry = this.clock.setTimeout(() => {
      delete this.timers.retry;
      this.open();
    }, delay);
  }

  /** The backend closed this connection and asked not to come back: stop. */
  stopKicked(frame) {
    const reason = `closed by the server (${frame.code}): ${frame.reason}`;
    this.closedByUser = true;
    this.clearTimers();
    const ws = this.ws;
    this.ws = null;
    if (ws) {
      try { ws.close(1000, 'kicked'); } catch { /* already closing */ }
    }
    this.emit('error', new RoomcastError('kicked', reason, { closeCode: frame.code, reason: frame.reason }));
    this.failPending(new RoomcastError('kicked', reason));
    for (const item of this.outbox) item.reject(new RoomcastError('kicked', reason));
    this.outbox = [];
    this.setState('closed', { reason, code: frame.code });
  }

  stopUnauthorized(message) {
    this.clearTimers();
    this.emit('error', new RoomcastError('unauthorized', message));
    this.setState('closed', { reason: 'unauthorized' });
    this.closedByUser = true;
  }

  clearTimer(name) {
    if (this.timers[name] !== undefined) {
      this.clock.clearTimeout(this.timers[name]);
      delete this.timers[name];
    }
  }

  clearTimers() {
    for (const name of Object.keys(this.timers)) this.clearTimer(name);
    for (const room of this.rooms.values()) {
      if (room.gapTimer !== undefined) this.clock.clearTimeout(room.gapTimer);
      room.gapTimer = undefined;
    }
  }

  // ---- requests ------------------------------------------------------------------

  transmit(frame) {
    if (!this.ws || this.ws.readyState !== 1) return false;
    try {
      this.ws.send(JSON.stringify(frame));
    } catch {
      return false;
    }
    this.lastSentAt = this.clock.now();
    return true;
  }

  /** Sends a frame with a ref; resolves with the reply, rejects on error. */
  request(frame) {
    return new Promise((resolve, reject) => {
      const ref = this.nextRef++;
      const timer = this.clock.setTimeout(() => {
        this.pending.delete(ref);
        reject(new RoomcastError('timeout', `no reply to ${frame.action} in time`));
      }, this.options.requestTimeoutMs);
      this.pending.set(ref, { resolve, reject, timer, action: frame.action });
      if (!this.transmit({ ...frame, ref })) {
        this.clock.clearTimeout(timer);
        this.pending.delete(ref);
        reject(new RoomcastError('not_connected', `cannot ${frame.action} while ${this.state}`));
      }
    });
  }

  failPending(error, which = () => true) {
    for (const [ref, p] of this.pending) {
      if (!which(p)) continue;
      this.clock.clearTimeout(p.timer);
      this.pending.delete(ref);
      p.reject(error);
    }
  }

  // ---- rooms -------------------------------------------------------------------

  room(name) {
    if (!this.rooms.has(name)) {
      // `epoch`: the stream `lastSeq` counts in ('' while not known);
      // `left`: epochs the room's stream has left (a late frame is stale).
      this.rooms.set(name, { lastSeq: null, epoch: '', left: [], joined: false, wanted: false, members: new Map(), buffer: new Map(), gapTimer: undefined });
    }
    return this.rooms.get(name);
  }

  /** Joins a room (and re-joins it after every reconnect). */
  join(name) {
    const room = this.room(name);
    room.wanted = true;
    if (this.state !== 'open') return Promise.resolve(null);
    return this.joinNow(name);
  }

  joinNow(name) {
    const room = this.room(name);
    const frame = { action: 'join', room: name };
    if (room.lastSeq !== null) {
      frame.since = room.lastSeq;
      // `since` counts in this epoch: if the room's stream started again,
      // the server replays the new one from its start.
      if (room.epoch) frame.epoch = room.epoch;
    }
    return this.request(frame).then((joined) => this.onJoined(name, joined));
  }

  onJoined(name, joined) {
    const room = this.room(name);
    room.joined = true;
    if (joined.members) {
      room.members = new Map(joined.members.map((m) => [m.user, m]));
      room.rosterTruncated = Boolean(joined.rosterTruncated);
      this.emit('presence', { room: name, members: [...room.members.values()], truncated: room.rosterTruncated, memberCount: joined.memberCount });
    }
    const missed = joined.missed ?? [];
    this.checkEpoch(name, joined.epoch ?? '');
    if (room.lastSeq === null) {
      // First join: start after the room's settled seq; anything buffered
      // while the join was in flight and newer than that is kept. Messages
      // in the reply were stored above that seq behind one still being
      // written: this member would otherwise never be sent them.
      room.lastSeq = joined.seq;
      for (const seq of [...room.buffer.keys()]) if (seq <= joined.seq) room.buffer.delete(seq);
      this.drain(name);
      for (const m of missed) this.offerMessage(m);
    } else {
      for (const m of missed) this.offerMessage(m);
      // Every seq up to `joined.seq` is stored or closed for good: what a
      // complete reply did not carry is not coming (never stored, or past
      // retention). A partial one (`more`) vouches only up to its last.
      const upto = joined.more ? Math.min(missed.length ? missed[missed.length - 1].seq : 0, joined.seq) : joined.seq;
      this.skipTo(name, Math.max(room.lastSeq, upto));
    }
    this.emit('joined', { room: name, seq: joined.seq, missed: missed.length, truncated: Boolean(joined.truncated) });
    if (joined.truncated) {
      this.emit('error', new RoomcastError('truncated', `some messages in ${name} are past retention and were not recovered`, { room: name }));
    }
    if (joined.more) return this.joinNow(name);
    return joined;
  }

  rejoinAll() {
    const joins = [...this.rooms.entries()].filter(([, r]) => r.wanted).map(([name]) => this.joinNow(name).catch((err) => this.emit('error', err)));
    Promise.allSettled(joins).then(() => this.flushOutbox());
  }

  /** Leaves a room; it is no longer re-joined. */
  leave(name) {
    const room = this.room(name);
    room.wanted = false;
    room.joined = false;
    if (this.state !== 'open') return Promise.resolve(null);
    return this.request({ action: 'leave', room: name });
  }

  /** Present users of a room (needs the presence right). */
  members(name) {
    return [...(this.rooms.get(name)?.members.values() ?? [])];
  }

  /** Whether `members(name)` is only part of the room (it is past the server's presence cap). */
  rosterPartial(name) {
    return Boolean(this.rooms.get(name)?.rosterTruncated);
  }

  history(name, { before, limit } = {}) {
    const frame = { action: 'history', room: name };
    if (before !== undefined) frame.before = before;
    if (limit !== undefined) frame.limit = limit;
    return this.request(frame);
  }

  // ---- ordered, deduplicated delivery -------------------------------------------------

  /**
   * Checks an epoch from the server against the room's: adopts it if the
   * room knew none; on a new one the stream started again (the server
   * lost the room's stream, or it was restored), so the room's place and
   * buffer are dropped, it counts from 0 in the new epoch and 'restart'
   * tells the app. Returns 'same', 'restarted' or 'stale' (an epoch the
   * room has left: the frame is from the old stream).
   */
  checkEpoch(name, epoch) {
    const room = this.room(name);
    if (epoch === room.epoch) return 'same';
    if (room.left.includes(epoch)) return 'stale';
    if (room.epoch === '') {
      room.epoch = epoch;
      return 'same';
    }
    room.left = [...room.left, room.epoch].slice(-4);
    room.epoch = epoch;
    room.lastSeq = 0;
    room.buffer.clear();
    if (room.gapTimer !== undefined) {
      this.clock.clearTimeout(room.gapTimer);
      room.gapTimer = undefined;
    }
    this.emit('restart', { room: name, epoch });
    return 'restarted';
  }

  offerMessage(m) {
    const room = this.room(m.room);
    if (!room.wanted) return; // not a room we are in
    // Messages stored before epochs carry none: no evidence either way.
    if (typeof m.epoch === 'string' && m.epoch !== '' && this.checkEpoch(m.room, m.epoch) === 'stale') return;
    if ((room.lastSeq !== null && m.seq <= room.lastSeq) || room.buffer.has(m.seq)) return; // duplicate
    room.buffer.set(m.seq, m);
    if (room.lastSeq === null) return; // the join reply will place it
    this.drain(m.room);
    if (room.buffer.size > 0 && room.gapTimer === undefined) {
      // A gap: a concurrent send still in flight, or a lost frame. Wait a
      // moment, then ask the server for what is missing.
      room.gapTimer = this.clock.setTimeout(() => {
        room.gapTimer = undefined;
        if (room.buffer.size > 0 && this.state === 'open') this.joinNow(m.room).catch((err) => this.emit('error', err));
      }, this.options.gapWaitMs);
    }
  }

  drain(name) {
    const room = this.room(name);
    while (room.buffer.has(room.lastSeq + 1)) {
      const next = room.buffer.get(room.lastSeq + 1);
      room.buffer.delete(room.lastSeq + 1);
      room.lastSeq += 1;
      if (next.unreadable) this.emit('error', new RoomcastError('malformed_frame', `message ${next.seq} in ${name} could not be read; skipped`, { room: name, seq: next.seq }));
      else this.deliver(next);
    }
    if (room.buffer.size === 0 && room.gapTimer !== undefined) {
      this.clock.clearTimeout(room.gapTimer);
      room.gapTimer = undefined;
    }
  }

  /**
   * One event of the room's stream, in order: a `message`, or a `change`
   * (an edit or a delete of the message `change.message` from
   * `change.author`) for the app to apply to the message it shows.
   */
  deliver(m) {
    if (m.change && typeof m.change === 'object') this.emit('change', m);
    else this.emit('message', m);
  }

  skipTo(name, seq) {
    const room = this.room(name);
    // Deliver what is buffered up to `seq` in order, skipping holes.
    const ready = [...room.buffer.keys()].filter((s) => s <= seq).sort((a, b) => a - b);
    for (const s of ready) {
      const m = room.buffer.get(s);
      room.buffer.delete(s);
      if (s > room.lastSeq) {
        room.lastSeq = s;
        this.deliver(m);
      }
    }
    if (seq > room.lastSeq) room.lastSeq = seq;
    this.drain(name);
  }

  // ---- sending ---------------------------------------------------------------------

  /**
   * Sends to a room. Resolves with the ack once stored (exactly once, even
   * across reconnects); rejects if the outbox is full or the server refuses.
   */
  send(room, data, { id } = {}) {
    return this.enqueue({ action: 'send', room, id: id ?? newId(), data });
  }

  /**
   * Edits a message of the room: `message` is its id, `author` its sender
   * (default: this user; anyone's needs the `moderate` right), `replaces`
   * the seq of the version shown. Queued, resent and acked exactly once
   * like a send; members get it as a `change` event.
   */
  edit(room, message, data, { author, replaces, id } = {}) {
    const frame = { action: 'edit', room, id: id ?? newId(), message, data };
    if (author !== undefined) frame.author = author;
    if (replaces !== undefined) frame.replaces = replaces;
    return this.enqueue(frame);
  }

  /** Deletes a message of the room (its data is erased; a tombstone stays). As `edit`. */
  delete(room, message, { author, id } = {}) {
    const frame = { action: 'delete', room, id: id ?? newId(), message };
    if (author !== undefined) frame.author = author;
    return this.enqueue(frame);
  }

  enqueue(frame) {
    if (this.outbox.length >= this.options.outboxLimit) {
      return Promise.reject(new RoomcastError('outbox_full', `${this.outbox.length} messages are waiting to be sent; try again later`));
    }
    return new Promise((resolve, reject) => {
      const item = { id: frame.id, room: frame.room, data: frame.data ?? null, frame, resolve, reject };
      this.outbox.push(item);
      this.emit('outbox', { size: this.outbox.length });
      this.pump();
    });
  }

  /**
   * Sends the oldest unacknowledged message, one at a time: every frame is
   * its own invocation on the server, so two sends in flight could be
   * stored in either order. One in flight keeps the sender's order.
   */
  pump() {
    if (this.inflight || this.state !== 'open' || this.outbox.length === 0) return;
    const item = this.outbox[0];
    this.inflight = item;
    this.request({ ...item.frame })
      .then((ack) => {
        this.inflight = null;
        this.outbox = this.outbox.filter((o) => o !== item);
        this.emit('outbox', { size: this.outbox.length });
        // The sender's own message (or change), delivered in order like
        // anyone else's.
        const own = { room: item.room, seq: ack.seq, epoch: ack.epoch, id: item.id, from: this.user, data: item.data, ts: this.clock.now(), own: true };
        const { action, message, author, replaces } = item.frame;
        if (action !== 'send') own.change = { kind: action, message, author: author ?? this.user?.user, replaces };
        this.offerMessage(own);
        item.resolve(ack);
        this.pump();
      })
      .catch((err) => {
        if (this.inflight === item) this.inflight = null;
        if (err.code === 'disconnected' || err.code === 'not_connected') {
          return; // stays first in the outbox; resent after the next (re)join
        }
        if (err.code === 'timeout' || err.code === 'unavailable' || err.code === 'rate_limited') {
          // The same id again after a pause: the server never stores it twice.
          this.clock.setTimeout(() => this.pump(), 1000);
          return;
        }
        this.outbox = this.outbox.filter((o) => o !== item);
        this.emit('outbox', { size: this.outbox.length });
        item.reject(err);
        this.pump();
      });
  }

  flushOutbox() {
    this.pump();
  }

  /**
   * Ephemeral data to a room (`ephemeral: true`): fan-out only, with no
   * seq, no history and no resend, for cursors, game state and anything
   * else where only the latest value matters. Not queued: rejects with
   * `not_connected` while the connection is down (send fresh data once it
   * is open again). Resolves with the ack, which carries no seq. Other
   * members get it as an `ephemeral` event.
   */
  sendEphemeral(room, data) {
    return this.request({ action: 'send', room, id: newId(), data, ephemeral: true });
  }

  /** A direct message to every connection of a user. */
  direct(to, data, { id } = {}) {
    return this.request({ action: 'direct', to, id: id ?? newId(), data });
  }

  /**
   * Reports typing; call on every keystroke. Sends `active: true` at most
   * once per idle window and `active: false` after `typingIdleMs` of quiet.
   */
  typing(room) {
    let t = this.typingState.get(room);
    if (!t) {
      t = { active: false, timer: undefined };
      this.typingState.set(room, t);
    }
    if (!t.active) {
      t.active = true;
      this.transmit({ action: 'typing', room, active: true });
    }
    if (t.timer !== undefined) this.clock.clearTimeout(t.timer);
    t.timer = this.clock.setTimeout(() => this.stopTyping(room), this.options.typingIdleMs);
  }

  /** Ends a typing indicator now (e.g. after sending). */
  stopTyping(room) {
    const t = this.typingState.get(room);
    if (!t || !t.active) return;
    t.active = false;
    if (t.timer !== undefined) this.clock.clearTimeout(t.timer);
    t.timer = undefined;
    this.transmit({ action: 'typing', room, active: false });
  }

  // ---- frames -------------------------------------------------------------------------

  onFrame(raw) {
    let frame;
    try {
      frame = JSON.parse(typeof raw === 'string' ? raw : new TextDecoder().decode(raw));
    } catch {
      this.emit('error', new RoomcastError('malformed_frame', 'the server sent a frame that is not JSON', { frame: String(raw).slice(0, 200) }));
      // Keep our place: an unreadable message still takes its seq, so the
      // messages after it are not held back behind it.
      const head = frameHead(String(raw));
      if (head.type === 'message' && head.room !== undefined && head.seq !== undefined) {
        this.offerMessage({ type: 'message', room: head.room, seq: head.seq, unreadable: true });
      }
      return undefined;
    }
    if (!frame || typeof frame !== 'object' || typeof frame.type !== 'string') {
      // API Gateway's own errors look like {"message": "..."}.
      if (frame && typeof frame.message === 'string') {
        return this.emit('error', new RoomcastError('gateway_error', frame.message, { requestId: frame.requestId }));
      }
      return this.emit('error', new RoomcastError('malformed_frame', 'the server sent a frame without a type', { frame }));
    }
    if (frame.ref !== undefined && this.pending.has(frame.ref)) {
      const p = this.pending.get(frame.ref);
      this.pending.delete(frame.ref);
      this.clock.clearTimeout(p.timer);
      if (frame.type === 'error') p.reject(new RoomcastError(frame.code, frame.message, { ref: frame.ref }));
      else p.resolve(frame);
      return;
    }
    switch (frame.type) {
      case 'message':
        if (typeof frame.room !== 'string' || typeof frame.seq !== 'number') {
          return this.emit('error', new RoomcastError('malformed_frame', 'a message frame lacks room or seq', { frame }));
        }
        return this.offerMessage(frame);
      case 'presence': {
        const room = this.room(frame.room);
        if (frame.event === 'joined') room.members.set(frame.user, { user: frame.user, name: frame.name, devices: 1 });
        else room.members.delete(frame.user);
        return this.emit('presence', { room: frame.room, user: frame.user, name: frame.name, event: frame.event, members: [...room.members.values()], truncated: Boolean(room.rosterTruncated) });
      }
      case 'roster': {
        // The room outgrew the server's presence cap: no more presence
        // events, so the members listed so far are only part of the room.
        const room = this.room(frame.room);
        room.rosterTruncated = true;
        return this.emit('presence', { room: frame.room, members: [...room.members.values()], truncated: true, memberCount: frame.memberCount });
      }
      case 'typing':
        return this.emit('typing', frame);
      case 'ephemeral':
        return this.emit('ephemeral', frame);
      case 'direct': {
        const key = `${frame.from?.user}\u0000${frame.id}`;
        if (this.seenDirect.has(key)) return;
        this.seenDirect.add(key);
        return this.emit('direct', frame);
      }
      case 'closing':
        // The backend is closing this connection (kicked or revoked).
        if (!frame.reconnect) return this.stopKicked(frame);
        return this.emit('closing', frame);
      case 'error':
        return this.emit('error', new RoomcastError(frame.code, frame.message));
      default:
        return this.emit('error', new RoomcastError('unknown_frame', `unknown frame type ${JSON.stringify(frame.type)}`, { frame }));
    }
  }
}

/**
 * `type`, `room` and `seq` of a frame that JSON.parse refused. The server
 * writes them before any payload (`data`, `missed`), so they are read from
 * the text before the first payload field only.
 */
function frameHead(text) {
  const cut = text.search(/"(data|missed|messages|members)"\s*:/);
  const head = cut < 0 ? text : text.slice(0, cut);
  const str = (k) => head.match(new RegExp(`"${k}"\\s*:\\s*"((?:[^"\\\\]|\\\\.)*)"`))?.[1];
  const num = (k) => head.match(new RegExp(`"${k}"\\s*:\\s*(\\d+)`))?.[1];
  const seq = num('seq');
  return { type: str('type'), room: str('room'), seq: seq === undefined ? undefined : Number(seq) };
}
