/**
 * The words of the GraphQL over WebSocket protocol (`graphql-transport-ws`, graphql-ws's
 * PROTOCOL.md, a copy in `node_modules/graphql-ws/PROTOCOL.md`) as flowgraph's server and client
 * use them: close codes, message types, parsing of incoming frames, and the encoding of the hot
 * path's `next` frame.
 *
 * graphql-ws's own `CloseCode`, `MessageType` and `GRAPHQL_TRANSPORT_WS_PROTOCOL` are re-exported
 * as they are; {@link FlowgraphCloseCode} adds the RFC 6455 codes flowgraph closes with.
 */
import {
  CloseCode,
  GRAPHQL_TRANSPORT_WS_PROTOCOL,
  MessageType,
  validateMessage,
  type CompleteMessage,
  type ConnectionAckMessage,
  type ConnectionInitMessage,
  type ErrorMessage,
  type NextMessage,
  type PingMessage,
  type PongMessage,
  type SubscribeMessage,
  type SubscribePayload,
} from 'graphql-ws';

export { CloseCode, GRAPHQL_TRANSPORT_WS_PROTOCOL, MessageType };
export type {
  CompleteMessage,
  ConnectionAckMessage,
  ConnectionInitMessage,
  ErrorMessage,
  NextMessage,
  PingMessage,
  PongMessage,
  SubscribeMessage,
  SubscribePayload,
};

/**
 * Close codes flowgraph uses besides graphql-ws's {@link CloseCode} (4400, 4401, 4403, 4406, 4408,
 * 4409, 4429, 4500, and the client-side 4004, 4005, 4504). All are RFC 6455 section 7.4.1 codes
 * (1013 is from the IANA "WebSocket Close Code Number Registry"). graphql-ws's client reconnects
 * after 1000 (if it still has subscriptions), 1001, 1006 and 1013, and gives up on 1009.
 */
export enum FlowgraphCloseCode {
  /** 1000 Normal Closure: the client is done (`WsClientConnection.close()` by default). */
  NormalClosure = 1000,
  /** 1001 Going Away: the server is shutting down (`WsServer.close()`); reconnect elsewhere or later. */
  GoingAway = 1001,
  /**
   * 1006 Abnormal Closure: never sent on the wire; what a close event reports when the socket
   * ended without a close frame (a `terminate()`, a reset, a missed keep-alive pong).
   */
  AbnormalClosure = 1006,
  /** 1009 Message Too Big: an incoming message exceeded `maxMessageBytes` (the `ws` package's `maxPayload`). */
  MessageTooBig = 1009,
  /**
   * 1013 Try Again Later, flowgraph's slow consumer: the connection's send buffer would have
   * exceeded `maxBufferedBytes`. The frame that did not fit is dropped and so are the
   * connection's subscriptions; the client reconnects and resumes from its last cursor.
   */
  SlowConsumer = 1013,
}

/** A close code either table defines. */
export type WsCloseCode = CloseCode | FlowgraphCloseCode;

/** Most bytes of a close reason: a close frame's payload is at most 125 bytes, 2 of them the code (RFC 6455 section 5.5). */
export const MAX_CLOSE_REASON_BYTES = 123;

/**
 * `reason` cut to at most {@link MAX_CLOSE_REASON_BYTES} UTF-8 bytes, on a character boundary,
 * ending with `…` when cut (the `ws` package throws on a longer reason).
 */
export function limitCloseReason(reason: string): string {
  if (Buffer.byteLength(reason) <= MAX_CLOSE_REASON_BYTES) return reason;
  const budget = MAX_CLOSE_REASON_BYTES - 3; // '…' is 3 bytes
  let bytes = 0;
  let end = 0;
  for (const char of reason) {
    const size = Buffer.byteLength(char);
    if (bytes + size > budget) break;
    bytes += size;
    end += char.length;
  }
  return `${reason.slice(0, end)}…`;
}

/**
 * A frame that breaks the protocol. `code` is the close code the socket gets (4400 Bad Request
 * for an invalid client message, PROTOCOL.md "Invalid message"; 4004 Bad Response for an invalid
 * server message, as graphql-ws's client does), `message` says what was expected and what arrived.
 */
export class ProtocolError extends Error {
  readonly code: WsCloseCode;
  constructor(message: string, code: WsCloseCode = CloseCode.BadRequest) {
    super(message);
    this.name = 'ProtocolError';
    this.code = code;
  }

  /** The message as a close reason (at most 123 bytes). */
  get closeReason(): string {
    return limitCloseReason(this.message);
  }
}

/** The `subscribe` message's payload, validated (PROTOCOL.md "Subscribe"). */
export interface WsSubscribePayload {
  readonly query: string;
  readonly operationName?: string | null;
  readonly variables?: Record<string, unknown> | null;
  readonly extensions?: Record<string, unknown> | null;
}

/** A message a client may send (PROTOCOL.md "Message types", direction Client -> Server or bidirectional). */
export type ClientMessage = ConnectionInitMessage | PingMessage | PongMessage | SubscribeMessage | CompleteMessage;

/** A message a server may send (direction Server -> Client or bidirectional). */
export type ServerMessage = ConnectionAckMessage | PingMessage | PongMessage | NextMessage | ErrorMessage | CompleteMessage;

const CLIENT_TYPES: ReadonlySet<string> = new Set([
  MessageType.ConnectionInit,
  MessageType.Ping,
  MessageType.Pong,
  MessageType.Subscribe,
  MessageType.Complete,
]);
const SERVER_TYPES: ReadonlySet<string> = new Set([
  MessageType.ConnectionAck,
  MessageType.Ping,
  MessageType.Pong,
  MessageType.Next,
  MessageType.Error,
  MessageType.Complete,
]);

/**
 * Parses one incoming frame of a client into a typed message. The rules are graphql-ws's
 * `validateMessage` (PROTOCOL.md "Message types"), plus the direction: a client may not send
 * `connection_ack`, `next` or `error`.
 *
 * - binary frames are invalid (messages are JSON text, PROTOCOL.md "Communication");
 * - `connection_init`, `ping`, `pong`: `payload` an object, `null` or absent;
 * - `subscribe`: `id` a non-empty string; `payload` an object whose `query` is a string,
 *   `operationName` a string, `null` or absent, `variables` and `extensions` objects, `null` or absent;
 * - `complete`: `id` a non-empty string.
 *
 * @param frame the frame's data (a `Buffer` as the `ws` package delivers it, or a string)
 * @param isBinary whether it arrived as a binary frame
 * @throws ProtocolError (code 4400) saying what was expected and what arrived
 */
export function parseClientMessage(frame: Buffer | string, isBinary = false): ClientMessage {
  if (isBinary) throw new ProtocolError('Expected a text frame, got a binary frame');
  const message = parseJsonObject(frame, CloseCode.BadRequest);
  const type = message.type;
  if (typeof type !== 'string') throw new ProtocolError(`Expected "type" to be a string, got ${describe(type)}`);
  switch (type) {
    case MessageType.ConnectionInit:
    case MessageType.Ping:
    case MessageType.Pong:
      expectOptionalObject(message.payload, `"${type}" payload`);
      return message as unknown as ConnectionInitMessage | PingMessage | PongMessage;
    case MessageType.Subscribe: {
      expectId(message.id, type);
      const payload = message.payload;
      if (!isPlainObject(payload)) throw new ProtocolError(`Expected "subscribe" payload to be an object, got ${describe(payload)}`);
      if (typeof payload.query !== 'string') {
        throw new ProtocolError(`Expected "subscribe" payload.query to be a string, got ${describe(payload.query)}`);
      }
      if (payload.operationName != null && typeof payload.operationName !== 'string') {
        throw new ProtocolError(`Expected "subscribe" payload.operationName to be a string, null or absent, got ${describe(payload.operationName)}`);
      }
      expectOptionalObject(payload.variables, '"subscribe" payload.variables');
      expectOptionalObject(payload.extensions, '"subscribe" payload.extensions');
      return message as unknown as SubscribeMessage;
    }
    case MessageType.Complete:
      expectId(message.id, type);
      return message as unknown as CompleteMessage;
    default:
      if (SERVER_TYPES.has(type)) throw new ProtocolError(`Expected a client message, got "${type}" (sent by servers only)`);
      throw new ProtocolError(`Expected "type" to be one of ${[...CLIENT_TYPES].join(', ')}; got ${quote(type)}`);
  }
}

/**
 * Parses one incoming frame of a server into a typed message, with graphql-ws's own
 * `validateMessage` (what graphql-ws's client accepts), plus the direction: a server may not
 * send `connection_init` or `subscribe`.
 *
 * @throws ProtocolError (code 4004 Bad Response, graphql-ws's client-side code) saying what was
 *   expected and what arrived
 */
export function parseServerMessage(frame: Buffer | string, isBinary = false): ServerMessage {
  if (isBinary) throw new ProtocolError('Expected a text frame, got a binary frame', CloseCode.BadResponse);
  const message = parseJsonObject(frame, CloseCode.BadResponse);
  let valid;
  try {
    valid = validateMessage(message);
  } catch (error) {
    throw new ProtocolError((error as Error).message, CloseCode.BadResponse);
  }
  if (!SERVER_TYPES.has(valid.type)) throw new ProtocolError(`Expected a server message, got "${valid.type}" (sent by clients only)`, CloseCode.BadResponse);
  return valid as ServerMessage;
}

/** `{"type":"connection_ack"}`: the server's acknowledgement, no payload (PROTOCOL.md "ConnectionAck"). */
export const CONNECTION_ACK_FRAME = JSON.stringify({ type: MessageType.ConnectionAck });

/** `{"type":"pong"}` (PROTOCOL.md "Pong"). */
export const PONG_FRAME = JSON.stringify({ type: MessageType.Pong });

/**
 * The bytes every `next` frame of operation `id` starts with: `{"id":<id as JSON>,"type":"next","payload":`
 * (the key order graphql-ws's server writes too). Computed once per operation; the id is escaped
 * by `JSON.stringify`.
 */
export function nextFramePrefix(id: string): Buffer {
  return Buffer.from(`{"id":${JSON.stringify(id)},"type":"${MessageType.Next}","payload":`);
}

/**
 * One `next` frame: `prefix` + `payload` + `}` in one new buffer (one `Buffer.allocUnsafe`, two
 * copies), no JSON work. `payload` must be the JSON of an ExecutionResult
 * (PROTOCOL.md "Next"); it is not checked.
 *
 * @param prefix from {@link nextFramePrefix}
 * @param payload serialized once per event, shared by every operation it is sent to
 */
export function encodeNextFrame(prefix: Buffer, payload: Buffer | string): Buffer {
  const payloadBytes = typeof payload === 'string' ? Buffer.byteLength(payload) : payload.length;
  const frame = Buffer.allocUnsafe(prefix.length + payloadBytes + 1);
  prefix.copy(frame, 0);
  if (typeof payload === 'string') frame.write(payload, prefix.length);
  else payload.copy(frame, prefix.length);
  frame[frame.length - 1] = 0x7d; // '}'
  return frame;
}

function parseJsonObject(frame: Buffer | string, code: WsCloseCode): Record<string, unknown> {
  let value: unknown;
  try {
    value = JSON.parse(typeof frame === 'string' ? frame : frame.toString('utf8'));
  } catch (error) {
    throw new ProtocolError(`Expected a JSON message, got invalid JSON (${(error as Error).message})`, code);
  }
  if (!isPlainObject(value)) throw new ProtocolError(`Expected a message object, got ${describe(value)}`, code);
  return value;
}

function expectId(id: unknown, type: string): void {
  if (typeof id !== 'string' || id === '') {
    throw new ProtocolError(`Expected "${type}" id to be a non-empty string, got ${id === '' ? 'an empty string' : describe(id)}`);
  }
}

function expectOptionalObject(value: unknown, what: string): void {
  if (value != null && !isPlainObject(value)) throw new ProtocolError(`Expected ${what} to be an object, null or absent, got ${describe(value)}`);
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** What arrived, in words: `an array`, `a number (4)`, `null`. */
function describe(value: unknown): string {
  if (value === null) return 'null';
  if (value === undefined) return 'nothing';
  if (Array.isArray(value)) return 'an array';
  switch (typeof value) {
    case 'string':
      return `a string (${quote(value)})`;
    case 'number':
    case 'boolean':
      return `a ${typeof value} (${String(value)})`;
    case 'object':
      return 'an object';
    default:
      return typeof value;
  }
}

function quote(text: string): string {
  return JSON.stringify(text.length > 40 ? `${text.slice(0, 40)}…` : text);
}
