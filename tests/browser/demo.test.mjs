// The demo and roomcast.js in real headless Chromium (Debian's package),
// driven by playwright-core, against the emulator over real sockets.
// Screenshots go to target/browser/.
import test from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdirSync, existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import path from 'node:path';
import { chromium } from 'playwright-core';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const shots = path.join(root, 'target', 'browser');
const CHROMIUM = '/usr/bin/chromium';
const WAIT = 15_000;

let emulator;
let base;
let browser;

async function startEmulator(fixedPort = 0) {
  // cargo's output: CARGO_TARGET_DIR when set (relative to the repository), else target/.
  const targetDir = process.env.CARGO_TARGET_DIR ? path.resolve(root, process.env.CARGO_TARGET_DIR) : path.join(root, 'target');
  const bin = path.join(targetDir, 'debug', 'roomcast');
  if (!existsSync(bin)) throw new Error(`${bin} is missing: run cargo build first (bash infra/test.sh does)`);
  const child = spawn(bin, ['--port', String(fixedPort), '--static-dir', path.join(root, 'web'), '--template', path.join(root, 'template.yaml')], {
    cwd: root,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, RUST_LOG: 'warn' },
  });
  const port = await new Promise((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => reject(new Error(`the emulator did not start: ${out}`)), WAIT);
    child.stdout.on('data', (d) => {
      out += d;
      const m = out.match(/listening on 127\.0\.0\.1:(\d+)/);
      if (m) { clearTimeout(timer); resolve(Number(m[1])); }
    });
    child.on('exit', (code) => reject(new Error(`the emulator exited with ${code}: ${out}`)));
  });
  return { child, base: `http://127.0.0.1:${port}` };
}

test.before(async () => {
  if (!existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} is missing: apt-get install chromium (bash infra/test.sh does)`);
  mkdirSync(shots, { recursive: true });
  ({ child: emulator, base } = await startEmulator());
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
});

test.after(async () => {
  await browser?.close();
  emulator?.kill('SIGTERM');
});

async function openChat(name, room, viewport = { width: 1100, height: 720 }) {
  const context = await browser.newContext({ viewport });
  const page = await context.newPage();
  const errors = [];
  page.on('pageerror', (e) => errors.push(e));
  await page.goto(`${base}/?name=${encodeURIComponent(name)}&room=${room}`);
  await page.locator('#badge', { hasText: 'Live' }).waitFor({ timeout: WAIT });
  await page.waitForFunction(() => window.roomcastDemo.client.members(new URLSearchParams(location.search).get('room')).length > 0, null, { timeout: WAIT });
  return { context, page, errors };
}

const texts = (page) => page.$$eval('#messages li .text', (els) => els.map((e) => e.textContent));

async function waitForTexts(page, predicate, what) {
  const deadline = Date.now() + WAIT;
  for (;;) {
    const seen = await texts(page);
    if (predicate(seen)) return seen;
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}; saw ${JSON.stringify(seen)}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function forceClose(page) {
  const id = await page.evaluate(() => window.roomcastDemo.client.connectionId);
  assert.ok(id, 'connected');
  const res = await fetch(`${base}/prod/@connections/${encodeURIComponent(id)}`, { method: 'DELETE' });
  assert.equal(res.status, 204);
  return id;
}

test('two people chat and see each other, presence and typing', async () => {
  const alice = await openChat('Alice', 'lobby');
  const bob = await openChat('Bob', 'lobby');
  await alice.page.locator('#members li', { hasText: 'Bob' }).waitFor({ timeout: WAIT });
  await bob.page.locator('#members li', { hasText: 'Alice' }).waitFor({ timeout: WAIT });

  await bob.page.locator('#message-input').pressSequentially('hey', { delay: 20 });
  await alice.page.locator('#typing', { hasText: 'Bob is typing' }).waitFor({ timeout: WAIT });
  await bob.page.locator('#message-input').press('Enter');
  await waitForTexts(alice.page, (t) => t.includes('hey'), "bob's message at alice");
  await alice.page.locator('#typing', { hasText: 'Bob is typing' }).waitFor({ state: 'detached', timeout: WAIT }).catch(() => {});
  await alice.page.fill('#message-input', 'Hi Bob, welcome to Roomcast');
  await alice.page.press('#message-input', 'Enter');
  await waitForTexts(bob.page, (t) => t.includes('Hi Bob, welcome to Roomcast'), "alice's message at bob");
  assert.equal(await alice.page.locator('#messages li.own').count(), 1, "alice's own message is on her side");

  await alice.page.screenshot({ path: path.join(shots, 'demo.png') });
  const phone = await openChat('Carol', 'lobby', { width: 390, height: 760 });
  await waitForTexts(phone.page, (t) => t.includes('Hi Bob, welcome to Roomcast'), 'history on join');
  await phone.page.screenshot({ path: path.join(shots, 'demo-phone.png') });
  for (const p of [alice, bob, phone]) {
    assert.deepEqual(p.errors, []);
    await p.context.close();
  }
});

test('a client closed by the server reconnects, resumes, and shows every message once, in order', async () => {
  const alice = await openChat('Alice', 'resume');
  const bob = await openChat('Bob', 'resume');
  await forceClose(bob.page);
  const sent = [];
  for (let i = 1; i <= 8; i++) {
    sent.push(`while away ${i}`);
    await alice.page.evaluate((text) => window.roomcastDemo.client.send('resume', { text }), `while away ${i}`);
  }
  const seen = await waitForTexts(bob.page, (t) => sent.every((s) => t.includes(s)), 'all messages after the resume');
  assert.deepEqual(seen.filter((t) => t.startsWith('while away')), sent, 'each once, in order');
  await bob.page.locator('#badge', { hasText: 'Live' }).waitFor({ timeout: WAIT });
  const states = await bob.page.evaluate(() => window.roomcastDemo.client.state);
  assert.equal(states, 'open');
  await bob.page.screenshot({ path: path.join(shots, 'resumed.png') });
  await alice.context.close();
  await bob.context.close();
});

test('a user kicked through the server API sees why, and the client does not reconnect', async () => {
  const carol = await openChat('Carol', 'kick');
  // The server API through the emulator's Lambda Invoke API, as a backend
  // would call it (the SDK clients are tested in tests/e2e/server_api.rs).
  const res = await fetch(`${base}/2015-03-31/functions/PublishFunction/invocations`, {
    method: 'POST',
    body: JSON.stringify({ op: 'disconnect', user: 'carol', code: 4001, reason: 'kicked by a moderator', reconnect: false }),
  });
  assert.equal(res.status, 200);
  assert.equal(res.headers.get('x-amz-function-error'), null);
  assert.equal((await res.json()).disconnected, 1);
  await carol.page.locator('#notice', { hasText: 'kicked by a moderator' }).waitFor({ timeout: WAIT });
  await carol.page.locator('#badge', { hasText: 'Removed by the server' }).waitFor({ timeout: WAIT });
  const after = await carol.page.evaluate(() => {
    const c = window.roomcastDemo.client;
    return { state: c.state, socket: c.ws !== null, retry: c.timers.retry !== undefined };
  });
  assert.deepEqual(after, { state: 'closed', socket: false, retry: false }, 'stopped, no reconnect scheduled');
  await carol.page.screenshot({ path: path.join(shots, 'kicked.png') });
  await carol.context.close();
});

test('the inspector shows two clients chatting live, and a 410 fault set from it is recovered by resume', async () => {
  const inspector = await browser.newContext({ viewport: { width: 1400, height: 860 } });
  const page = await inspector.newPage();
  const errors = [];
  page.on('pageerror', (e) => errors.push(e));
  // Nothing the page asks for is missing (a favicon included).
  const missing = [];
  page.on('response', (r) => { if (r.status() === 404) missing.push(r.url()); });
  await page.goto(`${base}/_roomcast/`);
  await page.locator('#live', { hasText: 'live' }).waitFor({ timeout: WAIT });
  const dana = await openChat('Dana', 'inspect');
  const eli = await openChat('Eli', 'inspect');
  await dana.page.evaluate(() => window.roomcastDemo.client.send('inspect', { text: 'hello eli' }));
  await waitForTexts(eli.page, (t) => t.includes('hello eli'), 'the first message');
  // The frame in, the invocation behind it, and the frame out.
  await page.waitForFunction(() => {
    const e = window.inspector.entries;
    const frame = e.find((x) => x.kind === 'frame-in' && x.text.includes('hello eli'));
    return frame
      && e.some((x) => x.kind === 'invoke' && x.function === 'MessageFunction' && x.requestId === frame.requestId)
      && e.some((x) => x.kind === 'frame-out' && x.user === 'eli' && x.text.includes('hello eli'));
  }, null, { timeout: WAIT });
  // The room, its members and its last message.
  await page.locator('#rooms', { hasText: 'hello eli' }).waitFor({ timeout: WAIT });
  // Clicking the frame highlights the invocation it caused.
  await page.fill('#filter', 'hello eli');
  await page.locator('.entry.kind-frame-in').first().click();
  await page.fill('#filter', '');
  await page.locator('.entry.kind-invoke.linked').first().waitFor({ timeout: WAIT });
  // Clicking the invocation highlights the posts it made (its ack and
  // eli's message), and opens it for replay.
  await page.locator('.entry.kind-invoke.linked').first().click();
  await page.locator('.entry.kind-connections-api.linked').first().waitFor({ timeout: WAIT });
  // A replay re-runs that invocation: dana's message again, under a new id.
  await page.locator('#replay-event').waitFor({ timeout: WAIT });
  const replayed = await page.evaluate(() => {
    const event = JSON.parse(document.getElementById('replay-event').value);
    const frame = JSON.parse(event.body);
    frame.id = 'replayed-1';
    frame.data = { text: 'hello again' };
    event.body = JSON.stringify(frame);
    document.getElementById('replay-event').value = JSON.stringify(event);
    return frame.action;
  });
  assert.equal(replayed, 'send');
  await page.click('#replay-run');
  await page.locator('#replay-result', { hasText: '"result"' }).waitFor({ timeout: WAIT });
  await waitForTexts(eli.page, (t) => t.includes('hello again'), 'the replayed message');
  // A 410 fault for eli, set from the page: his next post fails and his
  // connection is cut; his client reconnects and resumes, nothing lost.
  await page.fill('input[name=user]', 'eli');
  await page.click('#add-fault');
  await page.locator('#n-faults', { hasText: '1' }).waitFor({ timeout: WAIT });
  await dana.page.evaluate(() => window.roomcastDemo.client.send('inspect', { text: 'while cut' }));
  await page.locator('#n-faults', { hasText: '0' }).waitFor({ timeout: WAIT });
  const seen = await waitForTexts(eli.page, (t) => t.includes('while cut'), 'the message sent while eli was cut');
  assert.equal(seen.filter((t) => t === 'while cut').length, 1, 'once');
  await eli.page.locator('#badge', { hasText: 'Live' }).waitFor({ timeout: WAIT });
  await page.waitForFunction(() => window.inspector.entries.some((x) => x.kind === 'connections-api' && x.result === 'gone'), null, { timeout: WAIT });
  // The console: connect as anyone with a dev token, send a frame, see the reply.
  await page.fill('#console-user', 'fay');
  await page.click('#console-connect');
  await page.locator('#console-log', { hasText: 'connected as fay' }).waitFor({ timeout: WAIT });
  await page.click('#console-send');
  await page.locator('#console-log', { hasText: '"type":"welcome"' }).waitFor({ timeout: WAIT });
  // A long frame, with Replay open: it wraps inside its panel, every
  // panel shows all it holds (the column scrolls instead), and each
  // connection's cut button is inside its panel.
  await dana.page.evaluate(() => window.roomcastDemo.client.send('inspect', { text: 'x'.repeat(600) }));
  await page.waitForFunction(() => window.inspector.entries.some((x) => x.kind === 'frame-out' && x.text.includes('x'.repeat(600))), null, { timeout: WAIT });
  const layout = await page.evaluate(() => {
    const over = (el) => el.scrollWidth - el.clientWidth;
    const sections = [...document.querySelectorAll('.left > section:not([hidden])')];
    const cut = (el) => el.scrollHeight - el.clientHeight;
    const inside = [...document.querySelectorAll('#connections button')].every((b) => {
      const box = b.getBoundingClientRect();
      const panel = b.closest('section').getBoundingClientRect();
      return box.right <= panel.right && box.left >= panel.left;
    });
    return {
      replayOpen: !document.getElementById('replay').hidden,
      entriesOverflow: over(document.getElementById('entries')),
      sectionsCut: sections.map((el) => [el.querySelector('h2').textContent, cut(el)]).filter(([, n]) => n > 1),
      sectionsOverflow: sections.map((el) => [el.querySelector('h2').textContent, over(el)]).filter(([, n]) => n > 1),
      buttonsInside: inside,
    };
  });
  assert.deepEqual(layout, { replayOpen: true, entriesOverflow: 0, sectionsCut: [], sectionsOverflow: [], buttonsInside: true });
  await page.screenshot({ path: path.join(shots, 'inspector.png') });
  assert.deepEqual(missing, []);
  assert.deepEqual(errors, []);
  await dana.context.close();
  await eli.context.close();
  await inspector.close();
});

test('messages sent while offline are delivered once when back online', async () => {
  const alice = await openChat('Alice', 'offline');
  const bob = await openChat('Bob', 'offline');
  await bob.context.setOffline(true);
  await bob.page.locator('#badge', { hasText: 'Offline' }).waitFor({ timeout: WAIT });
  const queued = ['sent offline 1', 'sent offline 2', 'sent offline 3'];
  for (const text of queued) {
    await bob.page.fill('#message-input', text);
    await bob.page.press('#message-input', 'Enter');
  }
  assert.equal(await bob.page.evaluate(() => window.roomcastDemo.client.outbox.length), 3, 'queued in the outbox');
  await bob.page.screenshot({ path: path.join(shots, 'offline.png') });
  await bob.context.setOffline(false);
  const seen = await waitForTexts(alice.page, (t) => queued.every((q) => t.includes(q)), 'the queued messages at alice');
  assert.deepEqual(seen.filter((t) => t.startsWith('sent offline')), queued, 'each once, in order');
  await waitForTexts(bob.page, (t) => queued.every((q) => t.includes(q)), "bob's own acked messages");
  assert.equal(await bob.page.evaluate(() => window.roomcastDemo.client.outbox.length), 0);
  await alice.context.close();
  await bob.context.close();
});

test('ephemeral data reaches the other browser at once, takes no seq and leaves no history', async () => {
  const alice = await openChat('Alice', 'cursors');
  const bob = await openChat('Bob', 'cursors');
  await bob.page.evaluate(() => {
    window.seenEphemeral = [];
    window.roomcastDemo.client.on('ephemeral', (e) => window.seenEphemeral.push(e));
  });
  const positions = [{ x: 1, y: 2 }, { x: 3, y: 4 }, { x: 5, y: 6 }];
  for (const p of positions) {
    const ack = await alice.page.evaluate((data) => window.roomcastDemo.client.sendEphemeral('cursors', data), p);
    assert.equal(ack.type, 'ack');
    assert.equal(ack.seq, undefined, 'no seq');
  }
  await bob.page.waitForFunction((n) => window.seenEphemeral.length >= n, positions.length, { timeout: WAIT });
  const seen = await bob.page.evaluate(() => window.seenEphemeral.map((e) => ({ data: e.data, from: e.from.user, seq: e.seq })));
  assert.deepEqual(seen.map((e) => e.data).sort((a, b) => a.x - b.x), positions);
  assert.ok(seen.every((e) => e.seq === undefined));
  const history = await bob.page.evaluate(() => window.roomcastDemo.client.history('cursors'));
  assert.deepEqual(history.messages, [], 'nothing stored');
  assert.deepEqual(await texts(bob.page), [], 'not shown as chat messages');
  await alice.context.close();
  await bob.context.close();
});

// Last: it restarts the emulator. On its memory store a restart loses
// every room's stream, and the new one reuses seqs 1, 2, 3 the open tabs
// have seen; the epoch tells them apart, so nothing new is hidden.
test('after the emulator restarts, an open tab shows the room started again and its new messages', async () => {
  const alice = await openChat('Alice', 'epoch');
  const bob = await openChat('Bob', 'epoch');
  const before = ['before 1', 'before 2', 'before 3'];
  for (const text of before) {
    await alice.page.fill('#message-input', text);
    await alice.page.press('#message-input', 'Enter');
  }
  await waitForTexts(bob.page, (t) => before.every((b) => t.includes(b)), 'the first stream at bob');
  const port = Number(new URL(base).port);
  const stopped = new Promise((resolve) => emulator.once('exit', resolve));
  emulator.kill('SIGTERM');
  await stopped;
  ({ child: emulator } = await startEmulator(port));
  for (const p of [alice, bob]) {
    await p.page.locator('#badge', { hasText: 'Live' }).waitFor({ timeout: WAIT });
    await p.page.locator('#notice', { hasText: '#epoch started again' }).waitFor({ timeout: WAIT });
  }
  const after = ['after 1', 'after 2', 'after 3'];
  for (const text of after) {
    await alice.page.fill('#message-input', text);
    await alice.page.press('#message-input', 'Enter');
  }
  const seen = await waitForTexts(bob.page, (t) => after.every((a) => t.includes(a)), 'the new stream at bob');
  assert.deepEqual(seen, after, 'the old stream is gone from the view, the new one shown in order');
  await waitForTexts(alice.page, (t) => after.every((a) => t.includes(a)), "alice's own new messages");
  const seqs = await bob.page.$$eval('#messages li', (els) => els.map((e) => Number(e.dataset.seq)));
  assert.deepEqual(seqs, [1, 2, 3], 'the new stream reuses the seqs the tab had seen');
  await bob.page.screenshot({ path: path.join(shots, 'restarted.png') });
  for (const p of [alice, bob]) {
    assert.deepEqual(p.errors, []);
    await p.context.close();
  }
});
