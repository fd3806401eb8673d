/**
 * A thin server side of the GraphQL over WebSocket protocol (`graphql-transport-ws`, graphql-ws's
 * PROTOCOL.md) on the `ws` package, attached to an existing HTTP server's `upgrade` event.
 *
 * It speaks the protocol (handshake, `connection_init`/`connection_ack`, `ping`/`pong`,
 * `subscribe`/`next`/`error`/`complete`), enforces the limits, and hands each operation to
 * `onSubscribe`; it executes nothing itself. Why not graphql-ws's `useServer`: it executes and
 * stringifies per client, while flowgraph fans one event out to thousands of operations. Here the
 * payload is serialized once by the caller and {@link WsOperation.next} only adds the operation's
 * envelope: a precomputed `{"id":…,"type":"next","payload":` prefix and `}`, one buffer
 * allocation and two copies per delivery.
 *
 * A slow client cannot grow the server's memory: past `maxBufferedBytes` in its send buffer the
 * connection is closed with 1013 (`FlowgraphCloseCode.SlowConsumer`) and the frame dropped.
 */
import type http from 'node:http';
import type { Duplex } from 'node:stream';
import type { GraphQLFormattedError } from 'graphql';
import { handleProtocols } from 'graphql-ws';
import { WebSocket, WebSocketServer } from 'ws';
import { inexactNumberRefusal } from '../eventstore/jsonNumbers.ts';
import { silentLogger, type Logger } from '../eventstore/logger.ts';
import {
  CloseCode,
  CONNECTION_ACK_FRAME,
  FlowgraphCloseCode,
  GRAPHQL_TRANSPORT_WS_PROTOCOL,
  limitCloseReason,
  MessageType,
  nextFramePrefix,
  parseClientMessage,
  PONG_FRAME,
  ProtocolError,
  type ClientMessage,
  type SubscribeMessage,
  type WsCloseCode,
  type WsSubscribePayload,
} from './protocol.ts';

export type { WsSubscribePayload };

/** Default of {@link WsServerOptions.path}. */
export const DEFAULT_WS_PATH = '/graphql';
/** Default of {@link WsServerOptions.connectionInitTimeoutMs}: 10 s. */
export const DEFAULT_CONNECTION_INIT_TIMEOUT_MS = 10_000;
/** Close reason (with code 4403) of a connection whose credentials expired (`WsServerOptions.expiresAtMs`). */
export const TOKEN_EXPIRED_REASON = 'Token expired';
/** Node's longest timer delay, in ms (a longer one fires after 1 ms). */
const MAX_TIMER_MS = 2 ** 31 - 1;
/** Default of {@link WsServerOptions.maxSubscriptionsPerConnection}. */
export const DEFAULT_MAX_SUBSCRIPTIONS_PER_CONNECTION = 100;
/** Default of {@link WsServerOptions.maxMessageBytes}: 256 KiB. */
export const DEFAULT_MAX_MESSAGE_BYTES = 262_144;
/** Default of {@link WsServerOptions.keepAliveIntervalMs}: 12 s (graphql-ws's `useServer` default). */
export const DEFAULT_KEEP_ALIVE_INTERVAL_MS = 12_000;
/** Default of {@link WsServerOptions.maxBufferedBytes}: 4 MiB. */
export const DEFAULT_MAX_BUFFERED_BYTES = 4_194_304;
/** Default of {@link WsServerOptions.closeTimeoutMs}: 1 s. */
export const DEFAULT_CLOSE_TIMEOUT_MS = 1_000;

/** `extensions.code` of the `error` an operation gets past `maxSubscriptionsPerConnection`. */
export const TOO_MANY_SUBSCRIPTIONS = 'TOO_MANY_SUBSCRIPTIONS';

/** One acknowledged connection (socket), as operations see it. */
export interface WsConnection<TIdentity> {
  /** Sequence number of the connection in this server, from 1 (for logs and metrics). */
  readonly id: number;
  /** What `authenticate` resolved to for this connection's `connection_init`. */
  readonly identity: TIdentity;
  /** The HTTP upgrade request (headers, remote address). */
  readonly request: http.IncomingMessage;
  /** Bytes queued for sending and not yet handed to the kernel (`ws`'s `bufferedAmount`). */
  readonly bufferedBytes: number;
  /**
   * Closes the socket with `code` and `reason` (cut to 123 bytes), stopping all its operations
   * right away; the socket is terminated if the close handshake has not finished in `closeTimeoutMs`.
   * Later calls are no-ops.
   * @throws TypeError when `code` is not a valid close code (RFC 6455 section 7.4)
   */
  close(code: number, reason: string): void;
}

/**
 * Why an operation stopped: the client sent `complete`; the server sent `complete` or `error`;
 * or its connection closed (client gone, slow consumer, keep-alive timeout, protocol error,
 * server shutdown).
 */
export type WsStopReason = 'client-complete' | 'server-complete' | 'server-error' | 'connection-closed';

/**
 * One `subscribe` operation, given to `onSubscribe`, which owns it until it stops.
 * `next`, `error` and `complete` may be called at any time; once the operation has stopped they
 * are no-ops.
 */
export interface WsOperation<TIdentity> {
  /** The client's operation id (unique among the connection's active operations). */
  readonly id: string;
  readonly payload: WsSubscribePayload;
  readonly connection: WsConnection<TIdentity>;
  /** Whether the operation has ended (for any {@link WsStopReason}). */
  readonly stopped: boolean;
  /**
   * Sends `{"id":<id>,"type":"next","payload":<payloadJson>}` (PROTOCOL.md "Next"): the hot path,
   * no JSON work. `payloadJson` must already be the JSON of an ExecutionResult (not checked).
   *
   * @returns false when nothing was sent: the operation has stopped, the connection is closing
   *   or gone, or this frame would have pushed the send buffer past `maxBufferedBytes` (the
   *   connection is then closed with 1013 and the operation stopped)
   */
  next(payloadJson: Buffer | string): boolean;
  /**
   * Sends an `error` message with these errors (PROTOCOL.md "Error": at least one, each with a
   * `message`; an empty list becomes an internal error) and ends the operation.
   */
  error(errors: readonly GraphQLFormattedError[]): void;
  /** Sends `complete` (PROTOCOL.md "Complete", Server -> Client) and ends the operation. */
  complete(): void;
  /**
   * Registers `callback` to run once when the operation ends, for any reason; right away if it
   * already has. Callbacks run in registration order; one that throws is logged, the rest run.
   */
  onStop(callback: (reason: WsStopReason) => void): void;
}

/** Options of {@link createWsServer}. */
export interface WsServerOptions<TIdentity> {
  /** The HTTP server whose `upgrade` requests this server takes (the one serving GraphQL over HTTP on the same port). */
  server: http.Server;
  /**
   * Pathname of the websocket endpoint; upgrades for other paths are left to other `upgrade`
   * listeners or, when this server is the only one, answered `404 Not Found`.
   * @default '/graphql'
   */
  path?: string;
  /**
   * The authentication hook, run on `connection_init` with its payload (`undefined` when absent or
   * `null`) and the upgrade request. Its result becomes `connection.identity` and the
   * `connection_ack` is sent (without payload). If it throws or rejects, the socket is closed
   * with 4403 Forbidden, reason `Forbidden` (the error's details are never sent; it is logged at
   * debug level). Subscribes arriving while it runs are 4401 Unauthorized (PROTOCOL.md
   * "Subscribe": not acknowledged yet).
   */
  authenticate(connectionParams: Record<string, unknown> | undefined, request: http.IncomingMessage): Promise<TIdentity>;
  /**
   * Called for each valid `subscribe` with a new id on an acknowledged connection (one whose
   * message holds a number no double keeps exactly gets an `error` message `BAD_USER_INPUT`,
   * `reason: 'INEXACT_NUMBER'`, instead; eventstore/jsonNumbers.ts); owns the
   * operation from then on (it calls `next`/`error`/`complete` and releases its resources in
   * `onStop`). If it throws or rejects before the operation stopped, the operation gets an
   * `error` message: a GraphQLError (of any graphql-js instance), an array of them or an
   * AggregateError of them become their `toJSON()`; anything else is logged and becomes
   * `{ message: 'Internal server error', extensions: { code: 'INTERNAL_SERVER_ERROR' } }`.
   */
  onSubscribe(operation: WsOperation<TIdentity>): void | Promise<void>;
  /**
   * When an acknowledged connection's credentials stop being valid, in ms since the epoch (e.g.
   * its token's `exp`), or undefined for never: at that instant the socket is closed with 4403,
   * reason `Token expired`, and its operations stopped. graphql-ws clients retry a 4403 close,
   * so a client that presents a fresh token in its next `connection_init` and resubscribes with
   * its cursor loses nothing. Asked once, right after `authenticate` resolved.
   * @default none: connections never expire
   */
  expiresAtMs?(connection: WsConnection<TIdentity>): number | undefined;
  /**
   * Time from the socket's opening to the `connection_ack`, in ms: no `connection_init` by then,
   * or an `authenticate` still pending, closes the socket with 4408 Connection initialisation
   * timeout (PROTOCOL.md "ConnectionInit"). 0 = no limit.
   * @default 10_000
   */
  connectionInitTimeoutMs?: number;
  /**
   * Most active operations per connection. The `subscribe` past it gets an `error` message
   * `{ message, extensions: { code: 'TOO_MANY_SUBSCRIPTIONS', limit: 'maxSubscriptionsPerConnection', max } }`
   * and the connection stays open.
   * @default 100
   */
  maxSubscriptionsPerConnection?: number;
  /**
   * Largest incoming message, in bytes (the `ws` package's `maxPayload`); a larger one closes the
   * socket with 1009 Message Too Big.
   * @default 262_144 (256 KiB)
   */
  maxMessageBytes?: number;
  /**
   * Interval of WebSocket ping frames (RFC 6455 section 5.5.2, not protocol `ping` messages), in
   * ms; a connection that has not answered the previous ping with a pong when the next is due is
   * terminated (close event 1006). 0 = no keep-alive.
   * @default 12_000
   */
  keepAliveIntervalMs?: number;
  /**
   * Most bytes a connection may have queued for sending (in user space, past what the kernel
   * took). A frame that would push the queue past it is dropped and the connection closed with
   * 1013 (`FlowgraphCloseCode.SlowConsumer`), its operations stopped.
   * @default 4_194_304 (4 MiB)
   */
  maxBufferedBytes?: number;
  /**
   * How long a close handshake the server started may take before the socket is terminated, in ms
   * (a slow consumer never reads the close frame queued behind its backlog).
   * @default 1_000
   */
  closeTimeoutMs?: number;
  /** Where connection events go (pino-compatible). @default silent */
  logger?: Logger;
  /**
   * Whether to accept an upgrade with this `Origin` header (undefined when absent: not a
   * browser); a refused one is answered `403 Forbidden` before the handshake. @default any
   */
  allowOrigin?(origin: string | undefined, request: http.IncomingMessage): boolean;
  /** Called when a connection is closed with 1013 for being too slow (metrics; must be cheap and never throw). @default none */
  onSlowConsumer?(): void;
}

/**
 * The tunable limits of a websocket server, as a service's configuration carries them (every
 * field optional, defaults as on {@link WsServerOptions}).
 */
export type WsServerLimits = Pick<
  WsServerOptions<unknown>,
  'connectionInitTimeoutMs' | 'maxSubscriptionsPerConnection' | 'maxMessageBytes' | 'keepAliveIntervalMs' | 'maxBufferedBytes' | 'closeTimeoutMs'
>;

/** A running websocket server; see {@link createWsServer}. */
export interface WsServer {
  /** Open sockets (acknowledged or not). */
  readonly connections: number;
  /** Active operations over all connections. */
  readonly operations: number;
  /**
   * Stops taking upgrades (503 from then on), closes every socket with 1001 Going away, which
   * stops every operation, and resolves once every socket is closed (terminating those still
   * open after `closeTimeoutMs`). Idempotent: every call returns the same promise.
   */
  close(): Promise<void>;
}

/** Send options of every frame: JSON text, even when the data is a Buffer. */
const TEXT_FRAME = { binary: false } as const;

const INTERNAL_SERVER_ERROR: GraphQLFormattedError = Object.freeze({
  message: 'Internal server error',
  extensions: Object.freeze({ code: 'INTERNAL_SERVER_ERROR' }),
});

/**
 * Attaches a graphql-transport-ws server to `options.server`'s `upgrade` event at `options.path`.
 * The HTTP server's lifecycle stays the caller's: call `close()` on this server before closing it
 * (upgraded sockets are no longer the HTTP server's connections).
 *
 * Handshake: `new WebSocketServer({ noServer: true, perMessageDeflate: false, maxPayload, handleProtocols })`
 * with graphql-ws's own `handleProtocols`: the `graphql-transport-ws` subprotocol is selected when
 * offered; otherwise the handshake is still accepted, without a subprotocol, and the socket closed
 * with 4406 Subprotocol not acceptable (as graphql-ws's server does; a client that offered other
 * subprotocols usually fails the handshake itself).
 */
export function createWsServer<TIdentity>(options: WsServerOptions<TIdentity>): WsServer {
  const config: ServerConfig<TIdentity> = {
    authenticate: options.authenticate,
    onSubscribe: options.onSubscribe,
    expiresAtMs: options.expiresAtMs,
    onSlowConsumer: options.onSlowConsumer,
    connectionInitTimeoutMs: options.connectionInitTimeoutMs ?? DEFAULT_CONNECTION_INIT_TIMEOUT_MS,
    maxSubscriptionsPerConnection: options.maxSubscriptionsPerConnection ?? DEFAULT_MAX_SUBSCRIPTIONS_PER_CONNECTION,
    maxBufferedBytes: options.maxBufferedBytes ?? DEFAULT_MAX_BUFFERED_BYTES,
    closeTimeoutMs: options.closeTimeoutMs ?? DEFAULT_CLOSE_TIMEOUT_MS,
    log: options.logger ?? silentLogger,
    operationCount: 0,
    connections: new Set(),
    onDrained: undefined,
  };
  const path = options.path ?? DEFAULT_WS_PATH;
  const httpServer = options.server;
  const wss = new WebSocketServer({
    noServer: true,
    clientTracking: false,
    perMessageDeflate: false,
    maxPayload: options.maxMessageBytes ?? DEFAULT_MAX_MESSAGE_BYTES,
    handleProtocols: (protocols) => handleProtocols(protocols),
  });
  let nextConnectionId = 0;
  let closing: Promise<void> | undefined;

  const onUpgrade = (request: http.IncomingMessage, socket: Duplex, head: Buffer) => {
    if (pathnameOf(request.url) !== path) {
      // Another upgrade listener may own that path; with none, nobody would answer.
      if (httpServer.listenerCount('upgrade') === 1) rejectUpgrade(socket, 404, 'Not Found');
      return;
    }
    if (closing) return rejectUpgrade(socket, 503, 'Service Unavailable');
    if (options.allowOrigin && !options.allowOrigin(request.headers.origin, request)) return rejectUpgrade(socket, 403, 'Forbidden');
    wss.handleUpgrade(request, socket, head, (ws) => {
      const connection = new ServerConnection(++nextConnectionId, ws, request, config);
      if (closing) connection.close(FlowgraphCloseCode.GoingAway, 'Going away');
    });
  };
  httpServer.on('upgrade', onUpgrade);

  const keepAliveIntervalMs = options.keepAliveIntervalMs ?? DEFAULT_KEEP_ALIVE_INTERVAL_MS;
  const keepAlive =
    keepAliveIntervalMs > 0
      ? setInterval(() => {
          for (const connection of config.connections) connection.keepAliveTick();
        }, keepAliveIntervalMs)
      : undefined;
  keepAlive?.unref();

  async function shutdown(): Promise<void> {
    clearInterval(keepAlive);
    const drained = new Promise<void>((resolve) => {
      config.onDrained = resolve;
    });
    for (const connection of [...config.connections]) connection.close(FlowgraphCloseCode.GoingAway, 'Going away');
    if (config.connections.size > 0) await drained;
    config.onDrained = undefined;
    httpServer.off('upgrade', onUpgrade);
    await new Promise<void>((resolve) => wss.close(() => resolve()));
  }

  return {
    get connections() {
      return config.connections.size;
    },
    get operations() {
      return config.operationCount;
    },
    close: () => (closing ??= shutdown()),
  };
}

/** What connections and operations share with their server. */
interface ServerConfig<TIdentity> {
  readonly authenticate: WsServerOptions<TIdentity>['authenticate'];
  readonly onSubscribe: WsServerOptions<TIdentity>['onSubscribe'];
  readonly expiresAtMs: WsServerOptions<TIdentity>['expiresAtMs'];
  readonly onSlowConsumer: WsServerOptions<TIdentity>['onSlowConsumer'];
  readonly connectionInitTimeoutMs: number;
  readonly maxSubscriptionsPerConnection: number;
  readonly maxBufferedBytes: number;
  readonly closeTimeoutMs: number;
  readonly log: Logger;
  operationCount: number;
  readonly connections: Set<ServerConnection<TIdentity>>;
  /** Set by `close()`: called when the last connection is gone. */
  onDrained: (() => void) | undefined;
}

type Phase = 'awaiting-init' | 'authenticating' | 'ready' | 'closed';

class ServerConnection<TIdentity> implements WsConnection<TIdentity> {
  readonly id: number;
  readonly request: http.IncomingMessage;
  readonly operations = new Map<string, ServerOperation<TIdentity>>();
  private readonly socket: WebSocket;
  private readonly config: ServerConfig<TIdentity>;
  private phase: Phase = 'awaiting-init';
  private identityValue: TIdentity | undefined;
  private initTimer: NodeJS.Timeout | undefined;
  private closeTimer: NodeJS.Timeout | undefined;
  /** Closes the connection when its credentials expire (`expiresAtMs`). */
  private expiryTimer: NodeJS.Timeout | undefined;
  /** Whether a pong answered the last keep-alive ping. */
  private alive = true;

  constructor(id: number, socket: WebSocket, request: http.IncomingMessage, config: ServerConfig<TIdentity>) {
    this.id = id;
    this.socket = socket;
    this.request = request;
    this.config = config;
    config.connections.add(this);
    // binaryType 'nodebuffer' (the default): a message is one Buffer, fragments joined.
    socket.on('message', (data, isBinary) => this.onMessage(data as Buffer, isBinary));
    socket.on('pong', () => {
      this.alive = true;
    });
    socket.on('error', (error) => config.log.debug({ connection: id, err: error }, 'websocket error'));
    socket.once('close', (code: number, reason: Buffer) => this.onClosed(code, reason));
    if (socket.protocol !== GRAPHQL_TRANSPORT_WS_PROTOCOL) {
      this.close(CloseCode.SubprotocolNotAcceptable, 'Subprotocol not acceptable');
      return;
    }
    if (config.connectionInitTimeoutMs > 0) {
      this.initTimer = setTimeout(() => this.close(CloseCode.ConnectionInitialisationTimeout, 'Connection initialisation timeout'), config.connectionInitTimeoutMs);
    }
  }

  get identity(): TIdentity {
    return this.identityValue as TIdentity;
  }

  get bufferedBytes(): number {
    return this.socket.bufferedAmount;
  }

  /**
   * Whether a frame of `byteLength` bytes may be sent now: false when the connection is closing or
   * gone, or when the frame would push the send buffer past `maxBufferedBytes` (the connection is
   * then closed as a slow consumer).
   */
  reserve(byteLength: number): boolean {
    const socket = this.socket;
    if (this.phase === 'closed' || socket.readyState !== WebSocket.OPEN) return false;
    const buffered = socket.bufferedAmount;
    if (buffered + byteLength <= this.config.maxBufferedBytes) return true;
    this.config.log.warn(
      { connection: this.id, bufferedBytes: buffered, frameBytes: byteLength, maxBufferedBytes: this.config.maxBufferedBytes },
      'websocket client too slow: send buffer full, closing it',
    );
    this.close(FlowgraphCloseCode.SlowConsumer, `Slow consumer: send buffer over ${this.config.maxBufferedBytes} bytes`);
    this.config.onSlowConsumer?.();
    return false;
  }

  /** Sends one text frame; {@link reserve} said yes. */
  write(frame: Buffer | string): void {
    this.socket.send(frame, TEXT_FRAME);
  }

  sendText(text: string): boolean {
    if (!this.reserve(Buffer.byteLength(text))) return false;
    this.write(text);
    return true;
  }

  close(code: WsCloseCode | number, reason: string): void {
    if (this.phase === 'closed') return;
    this.socket.close(code, limitCloseReason(reason)); // throws on an invalid code, before any state changes
    this.phase = 'closed';
    clearTimeout(this.initTimer);
    clearTimeout(this.expiryTimer);
    this.closeTimer = setTimeout(() => this.socket.terminate(), this.config.closeTimeoutMs);
    this.stopAll();
  }

  keepAliveTick(): void {
    if (this.phase === 'closed' || this.socket.readyState !== WebSocket.OPEN) return;
    if (!this.alive) {
      this.config.log.debug({ connection: this.id }, 'websocket client missed a keep-alive pong, terminating it');
      this.socket.terminate();
      return;
    }
    this.alive = false;
    this.socket.ping();
  }

  private onMessage(data: Buffer, isBinary: boolean): void {
    // Frames already received when the server started closing are not acted on.
    if (this.phase === 'closed') return;
    let message: ClientMessage;
    try {
      message = parseClientMessage(data, isBinary);
    } catch (error) {
      if (!(error instanceof ProtocolError)) throw error;
      this.config.log.debug({ connection: this.id, reason: error.message }, 'invalid websocket message, closing');
      this.close(error.code, error.closeReason);
      return;
    }
    switch (message.type) {
      case MessageType.ConnectionInit:
        if (this.phase !== 'awaiting-init') return this.close(CloseCode.TooManyInitialisationRequests, 'Too many initialisation requests');
        this.phase = 'authenticating';
        void this.authenticate(message.payload ?? undefined);
        return;
      case MessageType.Ping:
        this.sendText(message.payload ? JSON.stringify({ type: MessageType.Pong, payload: message.payload }) : PONG_FRAME);
        return;
      case MessageType.Pong:
        return;
      case MessageType.Subscribe:
        return this.subscribe(message, data);
      case MessageType.Complete:
        // Unknown ids (never used, or already ended on either side) are ignored (PROTOCOL.md "Complete").
        this.operations.get(message.id)?.stop('client-complete');
        return;
    }
  }

  private async authenticate(connectionParams: Record<string, unknown> | undefined): Promise<void> {
    let identity: TIdentity;
    try {
      identity = await this.config.authenticate(connectionParams, this.request);
    } catch (error) {
      if (this.phase === 'closed') return;
      this.config.log.debug({ connection: this.id, err: error }, 'websocket connection refused by authenticate');
      this.close(CloseCode.Forbidden, 'Forbidden');
      return;
    }
    if (this.phase === 'closed') return;
    this.identityValue = identity;
    this.phase = 'ready';
    clearTimeout(this.initTimer);
    const expiresAtMs = this.config.expiresAtMs?.(this);
    if (expiresAtMs !== undefined && Number.isFinite(expiresAtMs)) {
      if (expiresAtMs <= Date.now()) return this.close(CloseCode.Forbidden, TOKEN_EXPIRED_REASON);
      this.armExpiry(expiresAtMs);
    }
    this.sendText(CONNECTION_ACK_FRAME);
  }

  /** Closes the connection 4403 `Token expired` at `expiresAtMs` (in steps of at most 2^31-1 ms, Node's longest timer). */
  private armExpiry(expiresAtMs: number): void {
    const delay = expiresAtMs - Date.now();
    if (delay <= 0) {
      this.config.log.debug({ connection: this.id }, 'websocket credentials expired, closing');
      this.close(CloseCode.Forbidden, TOKEN_EXPIRED_REASON);
      return;
    }
    this.expiryTimer = setTimeout(() => this.armExpiry(expiresAtMs), Math.min(delay, MAX_TIMER_MS));
    this.expiryTimer.unref?.();
  }

  private subscribe(message: SubscribeMessage, frame: Buffer): void {
    // PROTOCOL.md "Subscribe": only after the ack (a pending authenticate is not one).
    if (this.phase !== 'ready') return this.close(CloseCode.Unauthorized, 'Unauthorized');
    const { id } = message;
    if (this.operations.has(id)) return this.close(CloseCode.SubscriberAlreadyExists, `Subscriber for ${id} already exists`);
    const max = this.config.maxSubscriptionsPerConnection;
    if (this.operations.size >= max) {
      this.sendText(
        errorFrame(JSON.stringify(id), [
          {
            message: `Too many subscriptions on this connection: at most ${max} may be active at once`,
            extensions: { code: TOO_MANY_SUBSCRIPTIONS, limit: 'maxSubscriptionsPerConnection', max },
          },
        ]),
      );
      return;
    }
    // JSON.parse has rounded any number a double cannot hold (eventstore/jsonNumbers.ts): refused, as over HTTP.
    const inexact = inexactNumberRefusal(frame.toString('utf8'));
    if (inexact) return void this.sendText(errorFrame(JSON.stringify(id), [inexact]));
    const operation = new ServerOperation(id, message.payload, this, this.config);
    this.operations.set(id, operation);
    this.config.operationCount++;
    let result: void | Promise<void>;
    try {
      result = this.config.onSubscribe(operation);
    } catch (error) {
      operation.fail(error);
      return;
    }
    if (result && typeof result.then === 'function') result.then(undefined, (error: unknown) => operation.fail(error));
  }

  private stopAll(): void {
    if (this.operations.size === 0) return;
    for (const operation of [...this.operations.values()]) operation.stop('connection-closed');
  }

  private onClosed(code: number, reason: Buffer): void {
    this.phase = 'closed';
    clearTimeout(this.initTimer);
    clearTimeout(this.expiryTimer);
    clearTimeout(this.closeTimer);
    this.stopAll();
    const { connections, log } = this.config;
    connections.delete(this);
    log.debug({ connection: this.id, code, reason: reason.toString() }, 'websocket closed');
    if (connections.size === 0) this.config.onDrained?.();
  }
}

class ServerOperation<TIdentity> implements WsOperation<TIdentity> {
  readonly id: string;
  readonly payload: WsSubscribePayload;
  readonly connection: ServerConnection<TIdentity>;
  stopped = false;
  /** `{"id":<id>,"type":"next","payload":`, built once. */
  private readonly prefix: Buffer;
  private readonly idJson: string;
  private readonly config: ServerConfig<TIdentity>;
  private stopCallbacks: ((reason: WsStopReason) => void)[] | undefined;
  private stopReason: WsStopReason | undefined;

  constructor(id: string, payload: WsSubscribePayload, connection: ServerConnection<TIdentity>, config: ServerConfig<TIdentity>) {
    this.id = id;
    this.payload = payload;
    this.connection = connection;
    this.config = config;
    this.idJson = JSON.stringify(id);
    this.prefix = nextFramePrefix(id);
  }

  next(payloadJson: Buffer | string): boolean {
    if (this.stopped) return false;
    // encodeNextFrame inlined, with the buffer check before the allocation.
    const prefix = this.prefix;
    const isString = typeof payloadJson === 'string';
    const length = prefix.length + (isString ? Buffer.byteLength(payloadJson) : payloadJson.length) + 1;
    const connection = this.connection;
    if (!connection.reserve(length)) return false;
    const frame = Buffer.allocUnsafe(length);
    prefix.copy(frame, 0);
    if (isString) frame.write(payloadJson, prefix.length);
    else payloadJson.copy(frame, prefix.length);
    frame[length - 1] = 0x7d; // '}'
    connection.write(frame);
    return true;
  }

  error(errors: readonly GraphQLFormattedError[]): void {
    if (this.stopped) return;
    if (errors.length === 0) {
      this.config.log.error({ connection: this.connection.id, operation: this.id }, 'operation.error() called with no errors; sending an internal error');
      errors = [INTERNAL_SERVER_ERROR];
    }
    this.connection.sendText(errorFrame(this.idJson, errors));
    this.stop('server-error');
  }

  complete(): void {
    if (this.stopped) return;
    this.connection.sendText(`{"id":${this.idJson},"type":"${MessageType.Complete}"}`);
    this.stop('server-complete');
  }

  onStop(callback: (reason: WsStopReason) => void): void {
    if (this.stopped) {
      this.runStopCallback(callback, this.stopReason ?? 'connection-closed');
      return;
    }
    (this.stopCallbacks ??= []).push(callback);
  }

  /** `onSubscribe` threw or rejected: an `error` message unless the operation already stopped. */
  fail(error: unknown): void {
    const errors = graphQLErrorsOf(error);
    if (!errors) {
      this.config.log.error({ connection: this.connection.id, operation: this.id, err: error }, 'onSubscribe failed unexpectedly');
    }
    this.error(errors ?? [INTERNAL_SERVER_ERROR]);
  }

  stop(reason: WsStopReason): void {
    if (this.stopped) return;
    this.stopped = true;
    this.stopReason = reason;
    const operations = this.connection.operations;
    if (operations.get(this.id) === this) operations.delete(this.id);
    this.config.operationCount--;
    const callbacks = this.stopCallbacks;
    this.stopCallbacks = undefined;
    if (callbacks) for (const callback of callbacks) this.runStopCallback(callback, reason);
  }

  private runStopCallback(callback: (reason: WsStopReason) => void, reason: WsStopReason): void {
    try {
      callback(reason);
    } catch (error) {
      this.config.log.error({ connection: this.connection.id, operation: this.id, err: error }, 'operation stop callback failed');
    }
  }
}

function errorFrame(idJson: string, errors: readonly GraphQLFormattedError[]): string {
  return `{"id":${idJson},"type":"${MessageType.Error}","payload":${JSON.stringify(errors)}}`;
}

/**
 * The formatted errors of a GraphQLError, an array or AggregateError of GraphQLErrors, else
 * undefined. Recognised by `Symbol.toStringTag` rather than `instanceof`: the subgraphs' errors
 * come from the CommonJS graphql-js that Apollo loads, ours from its ESM build.
 */
function graphQLErrorsOf(error: unknown): GraphQLFormattedError[] | undefined {
  if (isGraphQLError(error)) return [error.toJSON()];
  const list = Array.isArray(error) ? error : error instanceof AggregateError ? error.errors : undefined;
  if (list && list.length > 0 && list.every(isGraphQLError)) return list.map((item) => item.toJSON());
  return undefined;
}

function isGraphQLError(value: unknown): value is { toJSON(): GraphQLFormattedError } {
  return (
    value instanceof Error &&
    Object.prototype.toString.call(value) === '[object GraphQLError]' &&
    typeof (value as { toJSON?: unknown }).toJSON === 'function'
  );
}

function pathnameOf(url: string | undefined): string | undefined {
  try {
    return new URL(url ?? '/', 'http://localhost').pathname;
  } catch {
    return undefined;
  }
}

function rejectUpgrade(socket: Duplex, status: number, message: string): void {
  socket.once('error', () => {});
  socket.once('finish', () => socket.destroy());
  socket.end(`HTTP/1.1 ${status} ${message}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`);
}
