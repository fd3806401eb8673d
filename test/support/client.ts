/**
 * The ONE way tests reach the gateway over HTTP: `client/gatewayClient.ts` (shared with
 * `npm run demo`), with a token of the test run (`test/support/auth.ts` `testToken`) unless the
 * test says otherwise: `identity` picks who the token names (operator by default), `token`
 * sends a given one, `token: null` sends none.
 */
import { createGatewayClient as createClient, type GatewayClient, type GatewayClientOptions } from '../../client/gatewayClient.ts';
import type { Role } from '../../federation/roles.ts';
import { testToken } from './auth.ts';

export * from '../../client/gatewayClient.ts';

/** Options of the tests' {@link createGatewayClient}. */
export interface TestGatewayClientOptions extends Omit<GatewayClientOptions, 'token'> {
  /** Who the test token names. @default `{ subject: 'operator', role: 'operator' }` */
  identity?: { subject: string; role: Role };
  /** A token to send instead of a test token, or `null` for no `Authorization` header. */
  token?: GatewayClientOptions['token'] | null;
}

/** `createGatewayClient` of `client/gatewayClient.ts` with a test token by default (one per client, valid for an hour). */
export function createGatewayClient(url: string, options: TestGatewayClientOptions = {}): GatewayClient {
  const { identity, token, ...rest } = options;
  if (token === null) return createClient(url, rest);
  if (token !== undefined) return createClient(url, { ...rest, token });
  let issued: Promise<string> | undefined;
  return createClient(url, { ...rest, token: () => (issued ??= testToken(identity ?? { subject: 'operator', role: 'operator' })) });
}
