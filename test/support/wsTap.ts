/**
 * A TCP proxy in front of a subgraph that records the graphql-ws messages its clients send
 * (the gateway's upstream `subscribe` and `complete` messages), so that an end-to-end test can
 * see what the gateway asks a subgraph for: how many upstream subscriptions, from which cursor,
 * and when one is closed. Bytes are forwarded unchanged in both directions; only the
 * client-to-server frames of websocket upgrades are decoded (masked frames, RFC 6455 §5.2; the
 * gateway's client disables permessage-deflate, so text frames are plain JSON). Plain HTTP
 * requests pass through undecoded.
 *
 * When the target does not answer (the subgraph is down) the client's socket is destroyed, as a
 * refused connection would be.
 */
import net from 'node:net';

/** A message a client sent on one websocket connection through the tap. */
export interface TappedMessage {
  /** 1, 2, … per websocket connection accepted by the tap. */
  connection: number;
  /** The parsed JSON text frame (`{ type: 'subscribe', id, payload }`, `{ type: 'complete', id }`, …). */
  message: { type?: string; id?: string; payload?: { variables?: Record<string, unknown> } & Record<string, unknown> } & Record<string, unknown>;
}

/** A running tap. */
export interface WsTap {
  /** `http://127.0.0.1:<port>/graphql`: give it to the gateway as the subgraph's URL. */
  readonly url: string;
  /** Every text message clients sent so far, in order. */
  readonly messages: readonly TappedMessage[];
  /**
   * Resolves once `predicate` holds for the messages so far (checked on every new message).
   * @throws Error with the messages when `timeoutMs` passes first
   */
  waitFor(predicate: (messages: readonly TappedMessage[]) => boolean, label: string, timeoutMs?: number): Promise<void>;
  /** Stops listening and destroys every proxied connection. */
  close(): Promise<void>;
}

/** Starts a tap on a free port of 127.0.0.1 forwarding to `target`. */
export async function startWsTap(target: { host: string; port: number }): Promise<WsTap> {
  const messages: TappedMessage[] = [];
  const watchers = new Set<() => void>();
  const sockets = new Set<net.Socket>();
  let connections = 0;

  const record = (connection: number, text: string) => {
    try {
      messages.push({ connection, message: JSON.parse(text) });
    } catch {
      return;
    }
    for (const watcher of [...watchers]) watcher();
  };

  const server = net.createServer((client) => handle(client));

  function handle(client: net.Socket): void {
    sockets.add(client);
    const upstream = net.connect(target.port, target.host);
    sockets.add(upstream);
    const end = () => {
      client.destroy();
      upstream.destroy();
      sockets.delete(client);
      sockets.delete(upstream);
    };
    client.on('error', end).on('close', end);
    upstream.on('error', end).on('close', end);
    upstream.pipe(client);

    let head: Buffer | null = Buffer.alloc(0) as Buffer;
    let frames: Buffer = Buffer.alloc(0);
    let fragments: Buffer[] = [];
    let connection = 0;
    let decode = true;
    client.on('data', (chunk: Buffer) => {
      if (!upstream.destroyed) upstream.write(chunk);
      if (!decode) return;
      if (head !== null) {
        head = Buffer.concat([head, chunk]);
        const endOfHead = head.indexOf('\r\n\r\n');
        if (endOfHead < 0) return;
        const text = head.subarray(0, endOfHead).toString('latin1');
        const rest = head.subarray(endOfHead + 4);
        head = null;
        if (!/^upgrade:\s*websocket/im.test(text)) {
          decode = false;
          return;
        }
        connection = ++connections;
        frames = rest;
      } else {
        frames = Buffer.concat([frames, chunk]);
      }
      for (;;) {
        if (frames.length < 2) return;
        const fin = (frames[0]! & 0x80) !== 0;
        const opcode = frames[0]! & 0x0f;
        const masked = (frames[1]! & 0x80) !== 0;
        let length = frames[1]! & 0x7f;
        let offset = 2;
        if (length === 126) {
          if (frames.length < 4) return;
          length = frames.readUInt16BE(2);
          offset = 4;
        } else if (length === 127) {
          if (frames.length < 10) return;
          length = Number(frames.readBigUInt64BE(2));
          offset = 10;
        }
        const maskAt = offset;
        if (masked) offset += 4;
        if (frames.length < offset + length) return;
        const payload = Buffer.from(frames.subarray(offset, offset + length));
        if (masked) for (let i = 0; i < payload.length; i++) payload[i]! ^= frames[maskAt + (i % 4)]!;
        frames = frames.subarray(offset + length);
        if (opcode === 0x1 || (opcode === 0x0 && fragments.length > 0)) {
          fragments.push(payload);
          if (fin) {
            record(connection, Buffer.concat(fragments).toString('utf8'));
            fragments = [];
          }
        }
      }
    });
  }

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  const { port } = server.address() as net.AddressInfo;

  return {
    url: `http://127.0.0.1:${port}/graphql`,
    messages,
    waitFor(predicate, label, timeoutMs = 30_000) {
      if (predicate(messages)) return Promise.resolve();
      return new Promise<void>((resolve, reject) => {
        const check = () => {
          if (!predicate(messages)) return;
          clearTimeout(timer);
          watchers.delete(check);
          resolve();
        };
        const timer = setTimeout(() => {
          watchers.delete(check);
          reject(new Error(`${label}: not seen within ${timeoutMs} ms; messages: ${JSON.stringify(messages.map((m) => ({ c: m.connection, type: m.message.type, id: m.message.id })))}`));
        }, timeoutMs);
        watchers.add(check);
      });
    },
    async close() {
      for (const socket of sockets) socket.destroy();
      sockets.clear();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
