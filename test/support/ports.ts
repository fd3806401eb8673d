import net from 'node:net';

/**
 * A TCP port on 127.0.0.1 that nobody listens on right now, picked by the OS.
 *
 * Every test that needs a private server (embedded PostgreSQL, nats-server, a service) takes
 * its port from here rather than hard-coding one: test files run side by side, and a fixed
 * port in the ephemeral range can already be taken by another file's server or a client
 * socket. The port is free when returned; the caller binds it right away.
 */
export async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', resolve);
  });
  const { port } = server.address() as net.AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}
