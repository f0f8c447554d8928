// Types for roomcast.js, the Roomcast browser client. Hand-written.

export type ConnectionState = 'idle' | 'connecting' | 'open' | 'reconnecting' | 'offline' | 'closed';

export interface Sender {
  user: string;
  name: string;
}

export interface RoomMessage {
  room: string;
  seq: number;
  /** The room's stream epoch (absent on messages stored before epochs). */
  epoch?: string;
  id: string;
  from: Sender;
  data: unknown;
  ts: number;
  /** True for the app's own sends, delivered once their ack arrives. */
  own?: boolean;
  /** On a change event (an edit or a delete): the message it changes. `data` is the new payload, or null for a delete. */
  change?: MessageChange;
  /** On a changed message (history, resume): its latest change. `data` is the latest version; null once deleted. */
  revision?: MessageRevision;
}

/** The message a change event changes (docs/protocol.md, "Messages that change"). */
export interface MessageChange {
  kind: 'edit' | 'delete';
  /** The changed message's id. */
  message: string;
  /** Its sender's user id. */
  author: string;
  /** Its seq. */
  seq: number;
  /** The seq of the version the change replaced, as its client saw it. */
  replaces?: number;
}

/** A changed message's latest change. */
export interface MessageRevision {
  /** The seq of the change event that made this version. */
  seq: number;
  by: Sender;
  ts: number;
  /** Deleted: `data` is gone for good. */
  deleted?: boolean;
}

export interface Member {
  user: string;
  name: string;
  devices: number;
}

export interface Ack {
  type: 'ack';
  id: string;
  seq?: number;
  /** The room's stream epoch `seq` counts in (absent for duplicates, direct and ephemeral sends). */
  epoch?: string;
  duplicate?: boolean;
  delivered?: number;
}

export interface HistoryPage {
  type: 'history';
  room: string;
  messages: RoomMessage[];
  more: boolean;
}

export interface StateEvent {
  state: ConnectionState;
  reason?: string;
  /** When reconnecting: the delay before the next attempt. */
  retryInMs?: number;
  retryAt?: number;
  attempt?: number;
  connectionId?: string;
}

export interface PresenceEvent {
  room: string;
  members: Member[];
  user?: string;
  name?: string;
  event?: 'joined' | 'left';
  /** The room is past the server's presence cap: `members` is only part of it, and no more presence events come. */
  truncated?: boolean;
  /** Member connections in the room (with a roster or a roster notice); approximate in very large rooms. */
  memberCount?: number;
}

export interface TypingEvent {
  room: string;
  user: string;
  name: string;
  active: boolean;
}

export interface DirectMessage {
  from: Sender;
  id: string;
  data: unknown;
  ts: number;
}

export interface JoinedEvent {
  room: string;
  seq: number;
  /** Messages recovered after a reconnect. */
  missed: number;
  /** Some messages were past retention and are lost. */
  truncated: boolean;
}

// ---- Wire frames (docs/protocol.md) ------------------------------------------
// What the server sends, as roomcast-protocol defines it. tests/protocol_types.rs
// checks that every server frame type, field and error code appears here.

export type ErrorCode =
  | 'invalid_json' | 'invalid_frame' | 'unknown_action' | 'invalid_field' | 'invalid_room'
  | 'invalid_id' | 'payload_too_large' | 'forbidden' | 'not_joined' | 'rate_limited'
  | 'token_expired' | 'invalid_token' | 'unavailable' | 'not_found';

/** Limits the client should respect, sent in `welcome`. */
export interface ClientLimits {
  maxDataBytes: number;
  maxRoomLen: number;
  maxIdLen: number;
  historyPageMax: number;
  ratePerSecond: number;
  rateBurst: number;
  /** Send a heartbeat well within this. */
  idleTimeoutSecs: number;
}

export interface WelcomeFrame { type: 'welcome'; connectionId: string; user: Sender; exp: number; limits: ClientLimits; ref?: unknown; }
export interface JoinedFrame { type: 'joined'; room: string; seq: number; epoch?: string; members?: Member[]; memberCount?: number; rosterTruncated?: boolean; missed?: RoomMessage[]; truncated?: boolean; more?: boolean; ref?: unknown; }
export interface LeftFrame { type: 'left'; room: string; ref?: unknown; }
export interface MessageFrame { type: 'message'; room: string; seq: number; epoch?: string; id: string; from: Sender; data: unknown; ts: number; change?: MessageChange; revision?: MessageRevision; }
export interface AckFrame { type: 'ack'; id: string; seq?: number; epoch?: string; duplicate?: boolean; delivered?: number; ref?: unknown; }
export interface PresenceFrame { type: 'presence'; room: string; user: string; name: string; event: 'joined' | 'left'; }
export interface RosterFrame { type: 'roster'; room: string; memberCount: number; truncated: boolean; }
export interface TypingFrame { type: 'typing'; room: string; user: string; name: string; active: boolean; }
export interface DirectFrame { type: 'direct'; from: Sender; id: string; data: unknown; ts: number; }
export interface EphemeralFrame { type: 'ephemeral'; room: string; id: string; from: Sender; data: unknown; ts: number; }
export interface HistoryFrame { type: 'history'; room: string; messages: RoomMessage[]; more: boolean; ref?: unknown; }
export interface PongFrame { type: 'pong'; ts: number; ref?: unknown; }
export interface AuthedFrame { type: 'authed'; exp: number; left?: string[]; ref?: unknown; }
/** The backend is closing this connection (kicked or revoked); with `reconnect: false` the client stops. */
export interface ClosingFrame { type: 'closing'; code: number; reason: string; reconnect: boolean; }
export interface ErrorFrame { type: 'error'; code: ErrorCode; message: string; ref?: unknown; }

export type ServerFrame =
  | WelcomeFrame | JoinedFrame | LeftFrame | MessageFrame | AckFrame | PresenceFrame | RosterFrame | TypingFrame
  | DirectFrame | EphemeralFrame | HistoryFrame | PongFrame | AuthedFrame | ClosingFrame | ErrorFrame;

export interface Clock {
  now(): number;
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

export interface RoomcastOptions {
  /** The WebSocket URL, e.g. wss://…/prod or ws://127.0.0.1:3001/prod. */
  url: string;
  /** Returns a fresh token; called on every (re)connect and before `exp`. Throw a RoomcastError with code 'unauthorized' to stop. */
  token: () => string | Promise<string>;
  /** Default 5 min: heartbeat when nothing else was sent (API Gateway idles out at 10). */
  heartbeatMs?: number;
  /** Default 500 ms. */
  backoffBaseMs?: number;
  /** Default 30 s. */
  backoffCapMs?: number;
  /** Default 30 s: a connection this old resets the backoff. */
  stableAfterMs?: number;
  /** Default 110 min: reconnect before API Gateway's 2 h limit. */
  maxConnectionMs?: number;
  /** Default 60 s: refresh the token this long before `exp`. */
  refreshBeforeExpMs?: number;
  /** Default 15 s. */
  requestTimeoutMs?: number;
  /** Default 100: sends waiting for an ack; more are rejected with 'outbox_full'. */
  outboxLimit?: number;
  /** Default 3 s: typing stops after this much quiet. */
  typingIdleMs?: number;
  /** Default 1 s: how long a seq gap may stay open before asking the server. */
  gapWaitMs?: number;
  /** For tests: a WebSocket constructor. */
  WebSocket?: typeof WebSocket;
  /** For tests: a clock. */
  clock?: Clock;
  /** For tests: the jitter source. */
  random?: () => number;
}

export declare class RoomcastError extends Error {
  /** The server's error code, or one of: unauthorized, message_too_big, outbox_full, timeout, not_connected, disconnected, closed, malformed_frame, unknown_frame, gateway_error, truncated, refresh_failed, listener_failed. */
  code: string;
  ref?: number;
  constructor(code: string, message: string, detail?: object);
}

export declare function backoffDelay(attempt: number, options?: { base?: number; cap?: number; random?: () => number }): number;
export declare function tokenExpiry(token: string): number | null;

export declare class Roomcast {
  constructor(options: RoomcastOptions);
  readonly state: ConnectionState;
  readonly connectionId: string | null;
  readonly user: Sender | null;
  connect(): void;
  close(): void;
  join(room: string): Promise<unknown>;
  leave(room: string): Promise<unknown>;
  members(room: string): Member[];
  /** Whether `members(room)` is only part of the room (it is past the server's presence cap). */
  rosterPartial(room: string): boolean;
  history(room: string, options?: { before?: number; limit?: number }): Promise<HistoryPage>;
  send(room: string, data: unknown, options?: { id?: string }): Promise<Ack>;
  /** Edits message `message` (its id) of `author` (default: you; anyone's needs `moderate`). Delivered as a `change` event. */
  edit(room: string, message: string, data: unknown, options?: { author?: string; replaces?: number; id?: string }): Promise<Ack>;
  /** Deletes a message: its data is erased, a tombstone stays. As `edit`. */
  delete(room: string, message: string, options?: { author?: string; id?: string }): Promise<Ack>;
  /** Fan-out only: no seq, no history, no resend; rejects with 'not_connected' while down. */
  sendEphemeral(room: string, data: unknown): Promise<Ack>;
  direct(to: string, data: unknown, options?: { id?: string }): Promise<Ack>;
  typing(room: string): void;
  stopTyping(room: string): void;
  on(event: 'state', fn: (e: StateEvent) => void): () => void;
  on(event: 'message', fn: (m: RoomMessage) => void): () => void;
  /** An edit or a delete of a message, in the room's order (live, resumed, or your own once acked): `change` names the message; `data` is its new payload, null for a delete. */
  on(event: 'change', fn: (m: RoomMessage & { change: MessageChange }) => void): () => void;
  on(event: 'presence', fn: (e: PresenceEvent) => void): () => void;
  on(event: 'typing', fn: (e: TypingEvent) => void): () => void;
  on(event: 'direct', fn: (m: DirectMessage) => void): () => void;
  on(event: 'ephemeral', fn: (m: EphemeralFrame) => void): () => void;
  on(event: 'joined', fn: (e: JoinedEvent) => void): () => void;
  /** The room's stream started again (a new epoch: the server lost it, or it was restored): drop what is shown of the room; its messages follow again from seq 1. */
  on(event: 'restart', fn: (e: { room: string; epoch: string }) => void): () => void;
  on(event: 'welcome', fn: (w: { connectionId: string; user: Sender; exp: number }) => void): () => void;
  on(event: 'outbox', fn: (e: { size: number }) => void): () => void;
  on(event: 'error', fn: (e: RoomcastError) => void): () => void;
  /** The backend is closing this connection but allows a reconnect (`reconnect: true`); with `false` the client stops and reports a `kicked` error. */
  on(event: 'closing', fn: (f: ClosingFrame) => void): () => void;
  off(event: string, fn: (...args: any[]) => void): void;
}
