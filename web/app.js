// The Roomcast demo chat. Plain JS on top of roomcast.js.
import { Roomcast } from './roomcast.js';

const $ = (id) => document.getElementById(id);
const params = new URLSearchParams(location.search);
const wsUrl = params.get('ws') ?? `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/prod`;

let client;
let me = null;
let current = params.get('room') ?? 'lobby';
const rooms = new Map(); // room → { seen: Set<seq>, messages: [] }
const typingUsers = new Map(); // room → Map(user → name)
let countdown;

function slug(name) {
  return name.trim().toLowerCase().replace(/[^a-z0-9]+/g, '-').replace(/^-|-$/g, '') || 'guest';
}

async function devToken(name) {
  const url = `/dev/token?user=${encodeURIComponent(slug(name))}&name=${encodeURIComponent(name.trim())}`;
  const res = await fetch(url);
  if (res.status === 404) throw Object.assign(new Error('no dev tokens here'), { code: 'unauthorized' });
  if (!res.ok) throw new Error(`token request failed: ${res.status}`);
  return (await res.json()).token;
}

function roomState(room) {
  if (!rooms.has(room)) rooms.set(room, { seen: new Set(), messages: [] });
  return rooms.get(room);
}

function addMessage(m) {
  const r = roomState(m.room);
  if (r.seen.has(m.seq)) return false;
  r.seen.add(m.seq);
  r.messages.push(m);
  r.messages.sort((a, b) => a.seq - b.seq);
  if (m.room === current) renderMessages();
  return true;
}

// The room's stream started again (the server lost it: an emulator that
// restarted on its memory store, a restored table). What is shown is from
// a stream that no longer exists, and its seqs would hide the new one's.
function restartRoom(room) {
  const r = roomState(room);
  r.seen.clear();
  r.messages = [];
  if (room === current) renderMessages();
  notice(`#${room} started again on the server: showing it from the start`);
}

function renderRooms() {
  const list = $('rooms');
  list.replaceChildren(...[...rooms.keys()].map((room) => {
    const li = document.createElement('li');
    const b = document.createElement('button');
    b.textContent = `# ${room}`;
    b.setAttribute('aria-current', String(room === current));
    b.onclick = () => switchRoom(room);
    li.append(b);
    return li;
  }));
}

function renderMessages() {
  const list = $('messages');
  const r = roomState(current);
  list.replaceChildren(...r.messages.map((m) => {
    const li = document.createElement('li');
    li.dataset.seq = m.seq;
    if (me && m.from?.user === me.user) li.classList.add('own');
    if (m.pending) li.classList.add('pending');
    const meta = document.createElement('div');
    meta.className = 'meta';
    const when = new Date(m.ts).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });
    meta.textContent = `${m.from?.name ?? '?'} · ${when}`;
    const text = document.createElement('div');
    text.className = 'text';
    text.textContent = typeof m.data?.text === 'string' ? m.data.text : JSON.stringify(m.data);
    li.append(meta, text);
    return li;
  }));
  list.scrollTop = list.scrollHeight;
}

function renderMembers() {
  const items = client.members(current).map((m) => {
    const li = document.createElement('li');
    li.textContent = m.devices > 1 ? `${m.name} (${m.devices} devices)` : m.name;
    return li;
  });
  if (client.rosterPartial(current)) {
    const li = document.createElement('li');
    li.className = 'partial';
    li.textContent = 'and others (large room)';
    items.push(li);
  }
  $('members').replaceChildren(...items);
}

function renderTyping() {
  const names = [...(typingUsers.get(current)?.values() ?? [])];
  $('typing').textContent = names.length === 0 ? '' : names.length === 1 ? `${names[0]} is typing…` : `${names.join(', ')} are typing…`;
}

function notice(text) {
  const el = $('notice');
  el.textContent = text;
  el.hidden = false;
  clearTimeout(el.timer);
  el.timer = setTimeout(() => { el.hidden = true; }, 6000);
}

function setBadge(e) {
  const badge = $('badge');
  badge.dataset.state = e.state;
  clearInterval(countdown);
  if (e.state === 'open') badge.textContent = 'Live';
  else if (e.state === 'connecting') badge.textContent = 'Connecting…';
  else if (e.state === 'offline') badge.textContent = 'Offline';
  else if (e.state === 'closed') badge.textContent = e.reason === 'unauthorized' ? 'Signed out' : e.code ? 'Removed by the server' : 'Disconnected';
  else if (e.state === 'reconnecting') {
    const tick = () => {
      const s = Math.max(0, Math.ceil(((e.retryAt ?? Date.now()) - Date.now()) / 1000));
      badge.textContent = s > 0 ? `Reconnecting in ${s}s` : 'Reconnecting…';
    };
    tick();
    countdown = setInterval(tick, 250);
  }
}

async function enterRoom(room) {
  roomState(room);
  renderRooms();
  await client.join(room);
  try {
    const page = await client.history(room, { limit: 50 });
    for (const m of [...page.messages].reverse()) addMessage(m);
  } catch (err) {
    notice(`history unavailable: ${err.message}`);
  }
  renderMembers();
}

function switchRoom(room) {
  current = room;
  $('room-title').textContent = `#${room}`;
  renderRooms();
  renderMessages();
  renderMembers();
  renderTyping();
}

function start(name) {
  client = new Roomcast({ url: wsUrl, token: () => devToken(name) });
  window.roomcastDemo = { client }; // for the browser tests and the curious
  client.on('state', setBadge);
  client.on('welcome', (w) => {
    me = w.user;
    $('who').textContent = `Signed in as ${w.user.name}`;
  });
  client.on('message', (m) => addMessage(m));
  client.on('restart', ({ room }) => restartRoom(room));
  client.on('presence', (e) => { if (e.room === current) renderMembers(); });
  client.on('typing', (t) => {
    if (!typingUsers.has(t.room)) typingUsers.set(t.room, new Map());
    const map = typingUsers.get(t.room);
    if (t.active) map.set(t.user, t.name); else map.delete(t.user);
    if (t.room === current) renderTyping();
  });
  client.on('joined', (j) => {
    if (j.missed > 0) notice(`${j.missed} missed message${j.missed === 1 ? '' : 's'} recovered`);
    if (j.truncated) notice('some older messages are past retention');
  });
  client.on('error', (err) => {
    if (err.code === 'truncated') return;
    notice(err.message);
  });
  client.connect();
  client.on('state', (e) => {
    if (e.state === 'open' && !rooms.has(current)) enterRoom(current).then(() => switchRoom(current));
  });
  $('app').hidden = false;
}

$('composer').addEventListener('submit', async (event) => {
  event.preventDefault();
  const input = $('message-input');
  const text = input.value.trim();
  if (!text) return;
  input.value = '';
  client.stopTyping(current);
  try {
    await client.send(current, { text });
  } catch (err) {
    notice(`not sent: ${err.message}`);
  }
});

$('message-input').addEventListener('input', () => client?.typing(current));

$('join-form').addEventListener('submit', async (event) => {
  event.preventDefault();
  const room = $('join-input').value.trim();
  if (!room) return;
  $('join-input').value = '';
  try {
    await enterRoom(room);
    switchRoom(room);
  } catch (err) {
    notice(`cannot join ${room}: ${err.message}`);
  }
});

const preset = params.get('name');
if (preset) {
  start(preset);
} else {
  const dialog = $('name-dialog');
  dialog.showModal();
  $('name-form').addEventListener('submit', () => {
    const name = $('name-input').value.trim() || 'Guest';
    start(name);
  });
}
