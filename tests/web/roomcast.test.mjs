// Unit tests of web/roomcast.js: the reconnect schedule, ordering and
// deduplication, resume, the outbox, and bad input from the server.
import test from 'node:test';
import assert from 'node:assert/strict';
import { Roomcast, RoomcastError, backoffDelay, tokenExpiry } from '../../web/roomcast.js';
import { FakeClock, FakeWebSocket, flush } from './fakes.mjs';

function client(overrides = {}) {
  FakeWebSocket.reset();
  const clock = new FakeClock();
  const events = [];
  const c = new Roomcast({
    url: 'ws://test/prod',
    token: () => 'not-a-jwt',
    WebSocket: FakeWebSocket,
    clock,
    random: () => 0.5,
    ...overrides,
  });
  for (const e of ['state', 'message', 'change', 'error', 'joined', 'presence', 'typing', 'direct', 'closing', 'restart']) c.on(e, (p) => events.push([e, p]));
  return { c, clock, events, of: (kind) => events.filter(([e]) => e === kind).map(([, p]) => p) };
}

async function connected(t) {
  t.c.connect();
  await flush();
  const ws = FakeWebSocket.last();
  ws.accept();
  ws.welcome();
  await flush();
  return ws;
}

async function joinRoom(ws, room, seq, extra = {}) {
  const join = ws.lastSent('join');
  assert.equal(join.room, room);
  ws.receive({ type: 'joined', room, seq, ref: join.ref, ...extra });
  await flush();
  return join;
}

const msg = (room, seq, text = `m${seq}`) => ({ type: 'message', room, seq, id: `id${seq}`, from: { user: 'bob', name: 'Bob' }, data: { text }, ts: 1 });

test('backoff grows, carries full jitter and is capped', () => {
  const top = () => 0.999999;
  const ceilings = [0, 1, 2, 3, 4, 5, 6, 7, 10, 40].map((a) => backoffDelay(a, { random: top }));
  assert.deepEqual(ceilings.slice(0, 7), [499, 999, 1999, 3999, 7999, 15999, 29999]);
  assert.equal(ceilings[8], 29999, 'capped at 30 s');
  assert.equal(ceilings[9], 29999, 'huge attempts stay capped');
  assert.equal(backoffDelay(3, { random: () => 0 }), 0, 'full jitter reaches zero');
  assert.equal(backoffDelay(3, { random: () => 0.5 }), 2000);
});

test('failed handshakes reconnect on the backoff schedule, reset after a stable connection', async () => {
  const t = client({ random: () => 0.999999 });
  t.c.connect();
  await flush();
  const delays = [];
  for (let i = 0; i < 8; i++) {
    FakeWebSocket.last().drop(1006);
    await flush();
    const st = t.of('state').at(-1);
    assert.equal(st.state, 'reconnecting');
    delays.push(st.retryInMs);
    await t.clock.advance(st.retryInMs);
  }
  assert.deepEqual(delays, [499, 999, 1999, 3999, 7999, 15999, 29999, 29999]);
  const ws = FakeWebSocket.last();
  ws.accept();
  ws.welcome();
  await flush();
  await t.clock.advance(30_000);
  ws.drop(1006);
  await flush();
  assert.equal(t.of('state').at(-1).retryInMs, 499, 'backoff reset after 30 s of stable connection');
});

test('messages are delivered in seq order, each once', async () => {
  const t = client();
  const ws = await connected(t);
  t.c.join('r');
  await flush();
  await joinRoom(ws, 'r', 1);
  ws.receive(msg('r', 3));
  ws.receive(msg('r', 2));
  ws.receive(msg('r', 2));
  ws.receive(msg('r', 1)); // at or below the join seq: already seen
  ws.receive(msg('r', 4));
  await flush();
  assert.deepEqual(t.of('message').map((m) => m.seq), [2, 3, 4]);
});

test('a live message racing the join reply is kept', async () => {
  const t = client();
  const ws = await connected(t);
  t.c.join('r');
  await flush();
  ws.receive(msg('r', 6));
  await joinRoom(ws, 'r', 5);
  assert.deepEqual(t.of('message').map((m) => m.seq), [6]);
});

test('after a reconnect rooms are re-joined with since and missed messages arrive in order', async () => {
  const t = client();
  let ws = await connected(t);
  t.c.join('r');
  await flush();
  await joinRoom(ws, 'r', 10);
  ws.receive(msg('r', 11));
  await flush();
  ws.drop(1001, 'Going away');
  await flush();
  await t.clock.advance(t.of('state').at(-1).retryInMs);
  ws = FakeWebSocket.last();
  ws.accept();
  ws.welcome('c2');
  await flush();
  const join = ws.lastSent('join');
  assert.equal(join.since, 11);
  ws.receive(msg('r', 14)); // live, ahead of the reply
  ws.receive({ type: 'joined', room: 'r', seq: 13, missed: [msg('r', 12), msg('r', 13)], ref: join.ref });
  await flush();
  assert.deepEqual(t.of('message').map((m) => m.seq), [11, 12, 13, 14]);
  assert.deepEqual(t.of('joined').at(-1), { room: 'r', seq: 13, missed: 2, truncated: false });
});

// A room whose stream started again (the emulator restarted on its memory
// store, a restored table) reuses seqs the client has seen: the epoch
// tells the streams apart, so seqs 1–3 of the new one are not dropped.
test('a resume into a room whose stream started again replays the new stream from seq 1', async () => {
  const t = client();
  let ws = await connected(t);
  t.c.join('r');
  await flush();
  await joinRoom(ws, 'r', 3, { epoch: 'aaaa' });
  ws.receive({ ...msg('r', 4), epoch: 'aaaa' });
  await flush();
  ws.drop(1006, '');
  await flush();
  await t.clock.advance(t.of('state').at(-1).retryInMs);
  ws = FakeWebSocket.last();
  ws.accept();
  ws.welcome('c2');
  await flush();
  const join = ws.lastSent('join');
  assert.deepEqual([join.since, join.epoch], [4, 'aaaa'], 'the epoch since counts in');
  const fresh = [1, 2, 3].map((n) => ({ ...msg('r', n, `new ${n}`), epoch: 'bbbb' }));
  ws.receive({ type: 'joined', room: 'r', seq: 3, epoch: 'bbbb', missed: fresh, ref: join.ref });
  await flush();
  assert.deepEqual(t.of('restart'), [{ room: 'r', epoch: 'bbbb' }]);
  assert.deepEqual(t.of('message').map((m) => m.data.text), ['m4', 'new 1', 'new 2', 'new 3']);
  ws.receive({ ...msg('r', 5, 'late, old stream'), epoch: 'aaaa' });
  ws.receive({ ...msg('r', 4, 'new 4'), epoch: 'bbbb' });
  await flush();
  assert.deepEqual(t.of('message').map((m) => m.data.text).slice(4), ['new 4'], 'the old stream is stale');
  assert.equal(t.of('restart').length, 1);
});

test('a live message in a new epoch starts the room over, and the gap before it is fetched', async () => {
  const t = client();
  const ws = await connected(t);
  t.c.join('r');
  await flush();
  await joinRoom(ws, 'r', 7, { epoch: 'aaaa' });
  ws.receive({ ...msg('r', 2, 'new 2'), epoch: 'cccc' });
  await flush();
  assert.deepEqual(t.of('restart'), [{ room: 'r', epoch: 'cccc' }]);
  assert.equal(t.of('message').length, 0, 'seq 2 waits for seq 1');
  await t.clock.advance(1000);
  const ask = ws.lastSent('join');
  assert.deepEqual([ask.since, ask.epoch], [0, 'cccc']);
  ws.receive({ type: 'joined', room: 'r', seq: 2, epoch: 'cccc', missed: [{ ...msg('r', 1, 'new 1'), epoch: 'cccc' }, { ...msg('r', 2, 'new 2'), epoch: 'cccc' }], ref: ask.ref });
  await flush();
  assert.deepEqual(t.of('message').map((m) => m.data.text), ['new 1', 'new 2']);
});

// The sender's own messages come back as acks: their epoch places them
// too, so a sender whose room started again sees its new seqs 1, 2, …
test("the sender's own messages after a restart are shown, by the ack's epoch", async () => {
  const t = client();
  const ws = await connected(t);
  t.c.join('r');
  await flush();
  await joinRoom(ws, 'r', 0);
  for (const [seq, epoch] of [[1, 'aaaa'], [2, 'aaaa'], [1, 'bbbb']]) {
    const sent = t.c.send('r', { text: `${epoch} ${seq}` });
    await flush();
    const s = ws.lastSent('send');
    ws.receive({ type: 'ack', id: s.id, seq, epoch, ref: s.ref });
    await sent;
  }
  assert.deepEqual(t.of('message').map((m) => m.data.text), ['aaaa 1', 'aaaa 2', 'bbbb 1']);
  assert.deepEqual(t.of('restart'), [{ room: 'r', epoch: 'bbbb' }]);
});

test('epochs are adopted when first seen, and messages without one are no evidence', async () => {
  const t = client();
  const ws = await connected(t);
  t.c.join('r');
  await flush();
  await joinRoom(ws, 'r', 0); // a room with no stream yet: no epoch
  ws.receive({ ...msg('r', 1), epoch: 'dddd' });
  ws.receive(msg('r', 2)); // stored before epochs
  await flush();
  assert.deepEqual(t.of('message').map((m) => m.seq), [1, 2]);
  assert.equal(t.of('restart').length, 0);
});

test('a gap that stays open is filled by asking the server', async () => {
  const t = client();
  const ws = await connected(t);
  t.c.join('r');
  await flush();
  await joinRoom(ws, 'r', 3);
  ws.receive(msg('r', 5));
  await flush();
  assert.equal(t.of('message').length, 0, 'seq 5 waits for seq 4');
  const joinsBefore = ws.sent.filter((f) => f.action === 'join').length;
  await t.clock.advance(1000);
  const ask = ws.lastSent('join');
  assert.equal(ws.sent.filter((f) => f.action === 'join').length, joinsBefore + 1);
  assert.equal(ask.since, 3);
  // Seq 4 was never stored (skipped): the reply moves past it.
  ws.receive({ type: 'joined', room: 'r', seq: 5, missed: [msg('r', 5)], ref: ask.ref });
  await flush();
  assert.deepEqual(t.of('message').map((m) => m.seq), [5]);
});

test('sends wait in the outbox while disconnected and are resent with the same id', async () => {
  const t = client({ outboxLimit: 3 });
  let ws = await connected(t);
  t.c.join('r');
  await flush();
  await joinRoom(ws, 'r', 0);
  ws.drop(1006);
  await flush();
  const acks = [t.c.send('r', { text: 'a' }), t.c.send('r', { text: 'b' }), t.c.send('r', { text: 'c' })];
  await assert.rejects(t.c.send('r', { text: 'd' }), (e) => e instanceof RoomcastError && e.code === 'outbox_full');
  await t.clock.advance(t.of('state').at(-1).retryInMs);
  ws = FakeWebSocket.last();
  ws.accept();
  ws.welcome();
  await flush();
  await joinRoom(ws, 'r', 0);
  // One send in flight at a time, oldest first, each after the previous ack.
  const sends = [];
  for (let i = 0; i < 3; i++) {
    const inFlight = ws.sent.filter((f) => f.action === 'send');
    assert.equal(inFlight.length, i + 1, 'never more than one unacked send on the wire');
    const s = inFlight.at(-1);
    sends.push(s);
    ws.receive({ type: 'ack', id: s.id, seq: i + 1, ref: s.ref });
    await flush();
  }
  assert.deepEqual(sends.map((s) => s.data.text), ['a', 'b', 'c'], "the sender's order");
  const results = await Promise.all(acks);
  assert.deepEqual(results.map((a) => a.seq), [1, 2, 3]);
  assert.deepEqual(t.of('message').map((m) => [m.seq, m.own]), [[1, true], [2, true], [3, true]]);
  // A resend of an id the server already stored is acked as a duplicate.
  const again = t.c.send('r', { text: 'a' }, { id: sends[0].id });
  await flush();
  const s = ws.lastSent('send');
  ws.receive({ type: 'ack', id: s.id, seq: 1, duplicate: true, ref: s.ref });
  assert.equal((await again).duplicate, true);
  assert.equal(t.of('message').length, 3, 'not delivered twice');
});

test('malformed and unknown frames are reported, never thrown', async () => {
  const t = client();
  const ws = await connected(t);
  t.c.on('message', () => { throw new Error('app bug'); });
  ws.receive('{not json');
  ws.receive({ no: 'type' });
  ws.receive({ type: 'from-the-future', x: 1 });
  ws.receive({ type: 'message', room: 5 });
  ws.receive({ message: 'Internal server error', connectionId: 'c1', requestId: 'r' });
  t.c.join('r');
  await flush();
  await joinRoom(ws, 'r', 0);
  ws.receive(msg('r', 1));
  await flush();
  assert.deepEqual(t.of('error').map((e) => e.code), ['malformed_frame', 'malformed_frame', 'unknown_frame', 'malformed_frame', 'gateway_error', 'listener_failed']);
});

test('a 1009 close is reported with its cause, and the client reconnects', async () => {
  const t = client();
  const ws = await connected(t);
  ws.drop(1009, 'Message too big');
  await flush();
  const err = t.of('error').at(-1);
  assert.equal(err.code, 'message_too_big');
  assert.equal(err.closeCode, 1009);
  assert.equal(t.of('state').at(-1).state, 'reconnecting');
});

test('a closing frame without reconnect stops the client and says why; with reconnect it only reports', async () => {
  const t = client();
  const ws = await connected(t);
  ws.receive({ type: 'closing', code: 4010, reason: 'be nice', reconnect: true });
  await flush();
  assert.deepEqual(t.of('closing').at(-1), { type: 'closing', code: 4010, reason: 'be nice', reconnect: true });
  assert.notEqual(t.of('state').at(-1).state, 'closed');
  ws.receive({ type: 'closing', code: 4001, reason: 'kicked by a moderator', reconnect: false });
  ws.drop(1000, '');
  await flush();
  const err = t.of('error').at(-1);
  assert.equal(err.code, 'kicked');
  assert.equal(err.closeCode, 4001);
  const state = t.of('state').at(-1);
  assert.equal(state.state, 'closed');
  assert.equal(state.code, 4001);
  const before = FakeWebSocket.instances.length;
  await t.clock.advance(120_000);
  assert.equal(FakeWebSocket.instances.length, before, 'no reconnect');
});

test('an unauthorized token provider stops the reconnect loop', async () => {
  const t = client({ token: () => { throw new RoomcastError('unauthorized', 'signed out'); } });
  t.c.connect();
  await flush();
  assert.equal(t.of('state').at(-1).state, 'closed');
  assert.equal(t.of('error').at(-1).code, 'unauthorized');
  await t.clock.advance(120_000);
  assert.equal(FakeWebSocket.instances.length, 0, 'no connection attempts');
});

test('an expired token is not even tried', async () => {
  const payload = Buffer.from(JSON.stringify({ sub: 'a', exp: 1000 })).toString('base64url');
  const t = client({ token: () => `h.${payload}.s` });
  assert.equal(tokenExpiry(`h.${payload}.s`), 1000);
  t.c.connect();
  await flush();
  assert.equal(t.of('error').at(-1).code, 'unauthorized');
  assert.equal(FakeWebSocket.instances.length, 0);
});

test('heartbeats only when idle, and typing is debounced', async () => {
  const t = client();
  const ws = await connected(t);
  await t.clock.advance(4 * 60_000);
  t.c.typing('r');
  t.c.typing('r');
  t.c.typing('r');
  assert.equal(ws.sent.filter((f) => f.action === 'typing').length, 1, 'one active:true per burst');
  await t.clock.advance(3000);
  assert.deepEqual(ws.lastSent('typing'), { action: 'typing', room: 'r', active: false });
  await t.clock.advance(60_000); // 5 min since open, but typing was sent 1 min ago
  assert.equal(ws.sent.filter((f) => f.action === 'heartbeat').length, 0);
  await t.clock.advance(5 * 60_000);
  assert.equal(ws.sent.filter((f) => f.action === 'heartbeat').length, 1);
});

test('a client that only receives still heartbeats within a third of the server idle timeout', async () => {
  const t = client();
  t.c.connect();
  await flush();
  const ws = FakeWebSocket.last();
  ws.accept();
  ws.welcome('c1', undefined, { idleTimeoutSecs: 60 });
  await flush();
  t.c.join('r');
  await flush();
  await joinRoom(ws, 'r', 0);
  const beats = () => ws.sent.filter((f) => f.action === 'heartbeat').length;
  // Messages keep arriving every 5 s, but it sends nothing of its own.
  for (let s = 1; s <= 60; s++) {
    if (s % 5 === 0) ws.receive(msg('r', s / 5));
    await t.clock.advance(1000);
  }
  assert.ok(beats() >= 2, `only ${beats()} heartbeats in 60 s with a 60 s idle timeout`);
  assert.equal(t.of('message').length, 12, 'receiving went on');
});

test('an unreadable message keeps its place: the stream goes on after it', async () => {
  const t = client();
  const ws = await connected(t);
  t.c.join('r');
  await flush();
  await joinRoom(ws, 'r', 0);
  ws.receive(msg('r', 1));
  ws.receive('{"type":"message","room":"r","seq":2,"id":"x","data":[[[[oops');
  ws.receive(msg('r', 3));
  await flush();
  assert.deepEqual(t.of('message').map((m) => m.seq), [1, 3]);
  const skipped = t.of('error').filter((e) => e.code === 'malformed_frame' && e.seq === 2);
  assert.equal(skipped.length, 1, 'the unreadable message is reported by seq');
  assert.equal(ws.sent.filter((f) => f.action === 'join').length, 1, 'no re-join: nothing is missing');
});

test('a refreshed token that drops a room stops re-joining it', async () => {
  const exp = 1_800_000_000 + 3600; // the fake clock's start, plus an hour
  const b64 = (o) => Buffer.from(JSON.stringify(o)).toString('base64url');
  const jwt = `${b64({ alg: 'HS256' })}.${b64({ exp })}.sig`;
  const t = client({ token: () => jwt });
  const ws = await connected(t);
  t.c.join('keep');
  t.c.join('drop');
  await flush();
  for (const j of ws.sent.filter((f) => f.action === 'join')) ws.receive({ type: 'joined', room: j.room, seq: 0, ref: j.ref });
  await flush();
  await t.clock.advance((3600 - 60 + 1) * 1000); // the refresh is due a minute before exp
  const auth = ws.lastSent('auth');
  assert.ok(auth, 'the token was refreshed');
  ws.receive({ type: 'authed', exp: exp + 3600, left: ['drop'], ref: auth.ref });
  await flush();
  assert.ok(t.of('error').some((e) => e.code === 'forbidden' && e.room === 'drop'));
  ws.drop(1006);
  await t.clock.advance(31_000);
  const ws2 = FakeWebSocket.last();
  ws2.accept();
  ws2.welcome('c2');
  await flush();
  assert.deepEqual(ws2.sent.filter((f) => f.action === 'join').map((f) => f.room), ['keep']);
});

test('the connection is recycled before the 2 h limit', async () => {
  const t = client();
  const ws = await connected(t);
  await t.clock.advance(110 * 60_000);
  assert.equal(ws.closedWith?.code, 4000);
  const scheduled = t.of('state').filter((s) => s.retryInMs !== undefined).at(-1);
  assert.equal(scheduled.retryInMs, 0, 'immediately');
  assert.equal(FakeWebSocket.instances.length, 2, 'a new socket was opened');
});

test('a roster notice marks the roster partial, and later presence events keep saying so', async () => {
  const t = client();
  const ws = await connected(t);
  t.c.join('r');
  await flush();
  await joinRoom(ws, 'r', 1, { members: [{ user: 'bob', name: 'Bob', devices: 1 }], memberCount: 2 });
  assert.deepEqual(t.of('presence').at(-1), { room: 'r', members: [{ user: 'bob', name: 'Bob', devices: 1 }], truncated: false, memberCount: 2 });
  ws.receive({ type: 'roster', room: 'r', memberCount: 101, truncated: true });
  await flush();
  assert.deepEqual(t.of('presence').at(-1), { room: 'r', members: [{ user: 'bob', name: 'Bob', devices: 1 }], truncated: true, memberCount: 101 });
  ws.receive({ type: 'presence', room: 'r', user: 'bob', name: 'Bob', event: 'left' });
  await flush();
  const last = t.of('presence').at(-1);
  assert.equal(last.truncated, true);
  assert.deepEqual(last.members, []);
  assert.equal(t.c.rosterPartial('r'), true);
  assert.deepEqual(t.of('error'), [], 'a roster frame is known, not reported');
});

test('a first join reply carries what is stored above an open hole: it is delivered once the hole is filled', async () => {
  const t = client();
  const ws = await connected(t);
  t.c.join('r');
  await flush();
  // Seq 5 is still being written; 6 was stored (and fanned out) before
  // this member joined, so only the reply can bring it.
  await joinRoom(ws, 'r', 4, { missed: [msg('r', 6)] });
  assert.equal(t.of('message').length, 0, 'seq 6 waits for seq 5');
  ws.receive(msg('r', 5));
  ws.receive(msg('r', 6)); // also live: a duplicate
  await flush();
  assert.deepEqual(t.of('message').map((m) => m.seq), [5, 6]);
});

test('a partial resume (more) moves past closed seqs up to its last message, then asks again', async () => {
  const t = client();
  const ws = await connected(t);
  t.c.join('r');
  await flush();
  await joinRoom(ws, 'r', 1);
  ws.receive(msg('r', 9));
  await flush();
  await t.clock.advance(1000);
  const ask = ws.lastSent('join');
  assert.equal(ask.since, 1);
  // Seq 3 was closed (its writer died): a page that stops at 4 vouches for
  // everything up to 4, so the client asks again from 4, not from 2.
  ws.receive({ type: 'joined', room: 'r', seq: 9, missed: [msg('r', 2), msg('r', 4)], more: true, ref: ask.ref });
  await flush();
  assert.deepEqual(t.of('message').map((m) => m.seq), [2, 4]);
  const again = ws.lastSent('join');
  assert.notEqual(again.ref, ask.ref);
  assert.equal(again.since, 4);
  ws.receive({ type: 'joined', room: 'r', seq: 9, missed: [msg('r', 5), msg('r', 9)], ref: again.ref });
  await flush();
  assert.deepEqual(t.of('message').map((m) => m.seq), [2, 4, 5, 9]);
});

test('ephemeral sends go out at once with no seq, are never queued, and arrive as ephemeral events', async () => {
  const t = client();
  const seen = [];
  t.c.on('ephemeral', (e) => seen.push(e));
  await assert.rejects(t.c.sendEphemeral('r', { x: 1 }), (e) => e.code === 'not_connected');
  const ws = await connected(t);
  const acked = t.c.sendEphemeral('r', { x: 2 });
  await flush();
  const sent = ws.lastSent('send');
  assert.equal(sent.ephemeral, true);
  assert.deepEqual(sent.data, { x: 2 });
  ws.receive({ type: 'ack', id: sent.id, ref: sent.ref });
  assert.equal((await acked).seq, undefined);
  ws.receive({ type: 'ephemeral', room: 'r', id: 'e1', from: { user: 'bob', name: 'Bob' }, data: { x: 3 }, ts: 1 });
  await flush();
  assert.deepEqual(seen.map((e) => e.data), [{ x: 3 }]);
  assert.equal(t.of('message').length, 0, 'not a room message');
});

test('edits and deletes go through the outbox and arrive as change events in order', async () => {
  const t = client();
  const ws = await connected(t);
  t.c.join('r');
  await flush();
  await joinRoom(ws, 'r', 1);
  // Another member's edit of message m1, live, between two messages.
  ws.receive(msg('r', 2));
  ws.receive({ ...msg('r', 3, 'fixed'), id: 'e1', change: { kind: 'edit', message: 'id1', author: 'bob', seq: 1 } });
  await flush();
  assert.deepEqual(t.of('message').map((m) => m.seq), [2]);
  assert.deepEqual(t.of('change').map((m) => [m.seq, m.change.kind, m.change.message, m.data.text]), [[3, 'edit', 'id1', 'fixed']]);
  // Our own edit and delete: queued in order, each frame as the protocol
  // has it, and delivered as our own changes once acked.
  const edited = t.c.edit('r', 'mine', { text: 'better' }, { replaces: 2 });
  const deleted = t.c.delete('r', 'theirs', { author: 'bob' });
  await flush();
  const edit = ws.lastSent('edit');
  assert.deepEqual({ ...edit, id: undefined, ref: undefined }, { action: 'edit', room: 'r', id: undefined, ref: undefined, message: 'mine', data: { text: 'better' }, replaces: 2 });
  assert.equal(ws.lastSent('delete'), undefined, 'one change in flight at a time');
  ws.receive({ type: 'ack', id: edit.id, seq: 4, ref: edit.ref });
  await flush();
  const del = ws.lastSent('delete');
  assert.deepEqual([del.message, del.author, 'data' in del], ['theirs', 'bob', false]);
  ws.receive({ type: 'ack', id: del.id, seq: 5, ref: del.ref });
  assert.equal((await edited).seq, 4);
  assert.equal((await deleted).seq, 5);
  await flush();
  assert.deepEqual(t.of('change').map((m) => [m.seq, m.change.kind, m.change.author, Boolean(m.own)]), [
    [3, 'edit', 'bob', false],
    [4, 'edit', 'alice', true],
    [5, 'delete', 'bob', true],
  ]);
  // A refusal rejects with the server's code.
  const refused = t.c.edit('r', 'x', 1);
  await flush();
  const bad = ws.lastSent('edit');
  ws.receive({ type: 'error', code: 'not_found', message: 'no message x', ref: bad.ref });
  await assert.rejects(refused, (e) => e instanceof RoomcastError && e.code === 'not_found');
});
