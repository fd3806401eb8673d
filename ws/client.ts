/**
 * A thin client of the GraphQL over WebSocket protocol (`graphql-transport-ws`, graphql-ws's
 * PROTOCOL.md) on the `ws` package: the gateway's upstream connection to a subgraph, and the
 * tests' and benchmarks' client.
 *
 * One socket per {@link connectWs}, no automatic reconnection: when the socket closes, `closed`
 * resolves and the caller decides (the gateway re-subscribes from its last cursor). Each incoming
 * message is parsed once (`JSON.parse` of the frame) and validated with graphql-ws's own rules.
 */
import type { GraphQLFormattedError } from 'graphql';
import { WebSocket } from 'ws';
import { silentLogger, type Logger } from '../eventstore/logger.ts';
import {
  CloseCode,
  FlowgraphCloseCode,
  GRAPHQL_TRANSPORT_WS_PROTOCOL,
  limitCloseReason,
  MessageType,
  parseServerMessage,
  PONG_FRAME,
  ProtocolError,
  type ServerMessage,
  type WsSubscribePayload,
} from './protocol.ts';

/** Default of {@link WsClientOptions.connectTimeoutMs}: 5 s. */
export const DEFAULT_CONNECT_TIMEOUT_MS = 5_000;
/** Default of {@link WsClientOptions.keepAliveIntervalMs}: 12 s. */
export const DEFAULT_CLIENT_KEEP_ALIVE_INTERVAL_MS = 12_000;
/** Default of {@link WsClientOptions.maxMessageBytes}: 64 MiB. */
export const DEFAULT_CLIENT_MAX_MESSAGE_BYTES = 64 * 1024 * 1024;
/** Default of {@link WsClientOptions.closeTimeoutMs}: 1 s. */
export const DEFAULT_CLIENT_CLOSE_TIMEOUT_MS = 1_000;

/** Options of {@link connectWs}. */
export interface WsClientOptions {
  /** `ws://` or `wss://` URL of the endpoint, e.g. `ws://127.0.0.1:4001/graphql`. */
  url: string;
  /** The `connection_init` payload (PROTOCOL.md "ConnectionInit"); absent when not given. */
  connectionParams?: Record<string, unknown>;
  /**
   * Time for TCP connect, upgrade and `connection_ack` together, in ms; past it the attempt is
   * abandoned with a {@link WsConnectionError} of code 4504 Connection acknowledgement timeout.
   * @default 5_000
   */
  connectTimeoutMs?: number;
  /**
   * Interval of WebSocket ping frames once acknowledged, in ms; a server that has not answered
   * the previous ping when the next is due is deemed gone and the socket terminated (`closed`
   * resolves with 1006). 0 = no keep-alive.
   * @default 12_000
   */
  keepAliveIntervalMs?: number;
  /**
   * Largest incoming message, in bytes (`ws`'s `maxPayload`); a larger one is dropped unread and
   * closes the socket with 1009 Message Too Big (`closed` resolves with `{ code: 1009, reason:
   * 'Message too big' }`; before the ack, `connectWs` rejects with that code).
   * @default 67_108_864 (64 MiB)
   */
  maxMessageBytes?: number;
  /**
   * How long a close handshake started by {@link WsClientConnection.close} (or by a protocol
   * error) may take before the socket is terminated, in ms.
   * @default 1_000
   */
  closeTimeoutMs?: number;
  /** @default silent */
  logger?: Logger;
}

/** An execution result as a `next` message carries it (PROTOCOL.md "Next"). */
export interface WsExecutionResult {
  data?: Record<string, unknown> | null;
  errors?: GraphQLFormattedError[];
  extensions?: Record<string, unknown>;
}

/** Receives one operation's messages. None of them is called when the socket closes: watch `closed`. */
export interface WsSink {
  /**
   * A `next` message's payload, and `raw`, the whole frame as received
   * (`{"id":…,"type":"next","payload":…}`).
   */
  next(result: WsExecutionResult, raw: Buffer): void;
  /** An `error` message: the operation has ended (PROTOCOL.md "Error"). */
  error(errors: GraphQLFormattedError[]): void;
  /** A `complete` message: the operation has ended. */
  complete(): void;
}

/**
 * How a socket ended: the code and reason of the server's close frame. When none arrived and the
 * client had itself started closing, the code and reason it closed with: its `close()`, 4004 for
 * an invalid server message, 4504 for the connect timeout, or, for an incoming frame `ws`
 * rejected, 1009 `Message too big` (over `maxMessageBytes`), 1007 `Invalid UTF-8`, 1008 `Policy
 * violation` or 1002 `Protocol error` (`ws` sends these codes without a reason). Otherwise 1006
 * and `''`: the socket was reset or terminated, or the keep-alive gave up.
 */
export interface WsCloseInfo {
  code: number;
  reason: string;
}

/** An acknowledged connection. */
export interface WsClientConnection {
  /**
   * Sends `subscribe` with a new id (`"1"`, `"2"`, … per connection) and routes that id's
   * messages to `sink`. `unsubscribe()` sends `complete` if the operation is still active and
   * silences the sink; later calls are no-ops.
   * @throws WsConnectionError when the connection is closing or closed
   */
  subscribe(payload: WsSubscribePayload, sink: WsSink): { unsubscribe(): void };
  /** Resolves once the socket has closed, for any reason (never rejects). */
  readonly closed: Promise<WsCloseInfo>;
  /** Active operations (subscribed, not ended by either side). */
  readonly subscriptions: number;
  /**
   * Closes the socket with `code` and `reason` (cut to 123 bytes), terminating it if the
   * handshake has not finished in `closeTimeoutMs`. Idempotent.
   * @default code 1000, reason 'Normal Closure'
   */
  close(code?: number, reason?: string): void;
}

/**
 * The connection ended before it was acknowledged (`connectWs`), or is closed (`subscribe`).
 * `code` and `reason` are as {@link WsCloseInfo} says: the server's close frame (e.g. 4403
 * `Forbidden`), the client's own close (4004 for an invalid server message, 1009 for one over
 * `maxMessageBytes`), 4504 `Connection acknowledgement timeout` for the connect timeout, or 1006
 * and `''` when the socket failed without a close (refused, reset, an HTTP answer other than 101;
 * the `ws` error is in `cause`).
 */
export class WsConnectionError extends Error {
  readonly code: number;
  readonly reason: string;
  constructor(message: string, code: number, reason: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'WsConnectionError';
    this.code = code;
    this.reason = reason;
  }
}

/**
 * Opens a socket to `options.url` with the `graphql-transport-ws` subprotocol (no
 * permessage-deflate), sends `connection_init` and resolves once the server's `connection_ack`
 * arrives. Server `ping` messages are answered with `pong` (echoing the payload); invalid server
 * messages close the socket with 4004 Bad Response (as graphql-ws's client does).
 *
 * @throws WsConnectionError (rejection) when the socket closes or `connectTimeoutMs` passes before
 *   the ack (see the class for the codes)
 * @throws SyntaxError (rejection) when `url` is not a valid `ws:`/`wss:` (or `http:`/`https:`) URL
 */
export function connectWs(options: WsClientOptions): Promise<WsClientConnection> {
  try {
    return new ClientConnection(options).ready;
  } catch (error) {
    // `new WebSocket` throws synchronously on an invalid URL; callers only handle rejections.
    return Promise.reject(error);
  }
}

/**
 * The close `ws` sends for an invalid incoming frame, by its error's `code` (RFC 6455 section
 * 7.4.1: 1009 too big, 1007 not UTF-8, 1008 too many fragments, 1002 any other framing error).
 * `ws` sends the code without a reason; the reason here is for `closed` only.
 */
const RECEIVER_ERROR_CLOSES: Readonly<Record<string, WsCloseInfo>> = {
  WS_ERR_UNSUPPORTED_MESSAGE_LENGTH: { code: FlowgraphCloseCode.MessageTooBig, reason: 'Message too big' },
  WS_ERR_UNSUPPORTED_DATA_PAYLOAD_LENGTH: { code: FlowgraphCloseCode.MessageTooBig, reason: 'Message too big' },
  WS_ERR_INVALID_UTF8: { code: 1007, reason: 'Invalid UTF-8' },
  WS_ERR_INVALID_OPCODE: { code: 1002, reason: 'Protocol error' },
  WS_ERR_UNEXPECTED_RSV_1: { code: 1002, reason: 'Protocol error' },
  WS_ERR_UNEXPECTED_RSV_2_3: { code: 1002, reason: 'Protocol error' },
  WS_ERR_EXPECTED_FIN: { code: 1002, reason: 'Protocol error' },
  WS_ERR_INVALID_CONTROL_PAYLOAD_LENGTH: { code: 1002, reason: 'Protocol error' },
  WS_ERR_UNEXPECTED_MASK: { code: 1002, reason: 'Protocol error' },
  WS_ERR_INVALID_CLOSE_CODE: { code: 1002, reason: 'Protocol error' },
  WS_ERR_TOO_MANY_BUFFERED_PARTS: { code: 1008, reason: 'Policy violation' },
};

interface Subscription {
  readonly id: string;
  readonly sink: WsSink;
}

class ClientConnection implements WsClientConnection {
  readonly ready: Promise<WsClientConnection>;
  readonly closed: Promise<WsCloseInfo>;
  private readonly socket: WebSocket;
  private readonly url: string;
  private readonly log: Logger;
  private readonly keepAliveIntervalMs: number;
  private readonly closeTimeoutMs: number;
  private readonly active = new Map<string, Subscription>();
  private acknowledged = false;
  private closing: WsCloseInfo | undefined;
  private closedInfo: WsCloseInfo | undefined;
  private lastError: Error | undefined;
  private nextId = 0;
  private alive = true;
  private connectTimer: NodeJS.Timeout | undefined;
  private keepAliveTimer: NodeJS.Timeout | undefined;
  private closeTimer: NodeJS.Timeout | undefined;
  private settleReady!: { resolve(connection: WsClientConnection): void; reject(error: WsConnectionError): void };
  private resolveClosed!: (info: WsCloseInfo) => void;

  constructor(options: WsClientOptions) {
    this.url = options.url;
    this.log = options.logger ?? silentLogger;
    this.keepAliveIntervalMs = options.keepAliveIntervalMs ?? DEFAULT_CLIENT_KEEP_ALIVE_INTERVAL_MS;
    this.closeTimeoutMs = options.closeTimeoutMs ?? DEFAULT_CLIENT_CLOSE_TIMEOUT_MS;
    this.ready = new Promise((resolve, reject) => (this.settleReady = { resolve, reject }));
    this.closed = new Promise((resolve) => (this.resolveClosed = resolve));

    const socket = new WebSocket(options.url, GRAPHQL_TRANSPORT_WS_PROTOCOL, {
      perMessageDeflate: false,
      maxPayload: options.maxMessageBytes ?? DEFAULT_CLIENT_MAX_MESSAGE_BYTES,
    });
    this.socket = socket;
    const connectTimeoutMs = options.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS;
    this.connectTimer = setTimeout(() => {
      const reason = 'Connection acknowledgement timeout';
      this.settleReady.reject(
        new WsConnectionError(`No connection_ack from ${this.url} within ${connectTimeoutMs} ms`, CloseCode.ConnectionAcknowledgementTimeout, reason),
      );
      if (socket.readyState === WebSocket.OPEN) this.closeWith(CloseCode.ConnectionAcknowledgementTimeout, reason);
      else socket.terminate();
    }, connectTimeoutMs);

    socket.on('open', () => {
      const init = options.connectionParams
        ? JSON.stringify({ type: MessageType.ConnectionInit, payload: options.connectionParams })
        : JSON.stringify({ type: MessageType.ConnectionInit });
      socket.send(init);
    });
    socket.on('message', (data, isBinary) => this.onMessage(data as Buffer, isBinary));
    socket.on('pong', () => {
      this.alive = true;
    });
    socket.on('error', (error) => {
      this.lastError = error;
      this.log.debug({ url: this.url, err: error }, 'websocket client error');
      // A broken incoming frame: `ws` has already sent a close frame with this code.
      const sent = RECEIVER_ERROR_CLOSES[(error as NodeJS.ErrnoException).code ?? ''];
      if (sent && !this.closing && !this.closedInfo) this.closing = sent;
    });
    socket.once('close', (code: number, reason: Buffer) => this.onClosed(code, reason.toString()));
  }

  get subscriptions(): number {
    return this.active.size;
  }

  subscribe(payload: WsSubscribePayload, sink: WsSink): { unsubscribe(): void } {
    if (this.closing || this.closedInfo || this.socket.readyState !== WebSocket.OPEN) {
      const info = this.closedInfo ?? this.closing ?? { code: FlowgraphCloseCode.AbnormalClosure, reason: '' };
      throw new WsConnectionError(`Cannot subscribe: the connection to ${this.url} is closed (${info.code} ${info.reason})`, info.code, info.reason);
    }
    const id = String(++this.nextId);
    const subscription: Subscription = { id, sink };
    this.active.set(id, subscription);
    this.socket.send(JSON.stringify({ id, type: MessageType.Subscribe, payload }));
    return {
      unsubscribe: () => {
        if (this.active.get(id) !== subscription) return;
        this.active.delete(id);
        if (!this.closing && this.socket.readyState === WebSocket.OPEN) {
          this.socket.send(JSON.stringify({ id, type: MessageType.Complete }));
        }
      },
    };
  }

  close(code: number = FlowgraphCloseCode.NormalClosure, reason = 'Normal Closure'): void {
    this.closeWith(code, reason);
  }

  private closeWith(code: number, reason: string): void {
    if (this.closing || this.closedInfo) return;
    const limited = limitCloseReason(reason);
    this.socket.close(code, limited);
    this.closing = { code, reason: limited };
    this.closeTimer = setTimeout(() => this.socket.terminate(), this.closeTimeoutMs);
    this.closeTimer.unref();
  }

  private onMessage(data: Buffer, isBinary: boolean): void {
    if (this.closing) return;
    let message: ServerMessage;
    try {
      message = parseServerMessage(data, isBinary);
      if (!this.acknowledged && message.type !== MessageType.ConnectionAck && message.type !== MessageType.Ping && message.type !== MessageType.Pong) {
        throw new ProtocolError(`Expected connection_ack first, got "${message.type}"`, CloseCode.BadResponse);
      }
    } catch (error) {
      if (!(error instanceof ProtocolError)) throw error;
      this.log.warn({ url: this.url, reason: error.message }, 'invalid message from websocket server, closing');
      this.closeWith(error.code, error.closeReason);
      return;
    }
    switch (message.type) {
      case MessageType.ConnectionAck:
        // A repeated ack is ignored, as graphql-ws's client does.
        if (this.acknowledged) return;
        this.acknowledged = true;
        clearTimeout(this.connectTimer);
        this.startKeepAlive();
        this.settleReady.resolve(this);
        return;
      case MessageType.Ping:
        this.socket.send(message.payload ? JSON.stringify({ type: MessageType.Pong, payload: message.payload }) : PONG_FRAME);
        return;
      case MessageType.Pong:
        return;
      case MessageType.Next: {
        const subscription = this.active.get(message.id);
        if (subscription) this.deliver(subscription, () => subscription.sink.next(message.payload as WsExecutionResult, data));
        return;
      }
      case MessageType.Error: {
        const subscription = this.active.get(message.id);
        if (!subscription) return;
        this.active.delete(message.id);
        this.deliver(subscription, () => subscription.sink.error([...message.payload]));
        return;
      }
      case MessageType.Complete: {
        const subscription = this.active.get(message.id);
        if (!subscription) return;
        this.active.delete(message.id);
        this.deliver(subscription, () => subscription.sink.complete());
        return;
      }
    }
  }

  /** Calls a sink; one that throws is logged and does not break the socket's message handling. */
  private deliver(subscription: Subscription, call: () => void): void {
    try {
      call();
    } catch (error) {
      this.log.error({ url: this.url, operation: subscription.id, err: error }, 'websocket subscription sink threw');
    }
  }

  private startKeepAlive(): void {
    if (this.keepAliveIntervalMs <= 0) return;
    this.keepAliveTimer = setInterval(() => {
      if (this.socket.readyState !== WebSocket.OPEN) return;
      if (!this.alive) {
        this.log.warn({ url: this.url }, 'websocket server missed a keep-alive pong, terminating the socket');
        this.socket.terminate();
        return;
      }
      this.alive = false;
      this.socket.ping();
    }, this.keepAliveIntervalMs);
    this.keepAliveTimer.unref();
  }

  private onClosed(receivedCode: number, receivedReason: string): void {
    clearTimeout(this.connectTimer);
    clearTimeout(this.closeTimer);
    clearInterval(this.keepAliveTimer);
    // No close frame from the server after the client's own: report why the client closed.
    const info: WsCloseInfo =
      receivedCode === FlowgraphCloseCode.AbnormalClosure && this.closing ? { ...this.closing } : { code: receivedCode, reason: receivedReason };
    const { code, reason } = info;
    this.closedInfo = info;
    this.active.clear();
    if (!this.acknowledged) {
      const cause = this.lastError;
      const detail = reason ? `${code} ${reason}` : cause ? `${code} (${cause.message})` : String(code);
      this.settleReady.reject(new WsConnectionError(`WebSocket connection to ${this.url} closed before connection_ack: ${detail}`, code, reason, { cause }));
    }
    this.log.debug({ url: this.url, code, reason }, 'websocket client closed');
    this.resolveClosed(info);
  }
}
