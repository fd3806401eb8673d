/**
 * GraphiQL's fetcher for the gateway: queries and mutations (and the schema's introspection) as
 * HTTP `POST /graphql` with `content-type: application/json`; subscriptions over one graphql-ws
 * client (`graphql-transport-ws`) on `ws(s)://<host>/graphql`. Both carry the signed-in token
 * (`Authorization: Bearer …`; over the socket in the `connection_init` payload), unless the user
 * typed an `Authorization` header in GraphiQL's headers editor, which then wins.
 *
 * The gateway refuses a missing or bad token with HTTP 401 (`UNAUTHENTICATED`) and closes the
 * socket 4403 (4401 for an unauthorised protocol step); either is reported to `onAuthProblem` so
 * that the page can invite the user to sign in (until a request is accepted), and such a socket
 * is not reconnected.
 */
import type { Fetcher, FetcherOpts, FetcherParams, Observable } from '@graphiql/toolkit';
import { getOperationAST, Kind, parse, type DocumentNode } from 'graphql';
import { createClient, type Client, type ExecutionResult } from 'graphql-ws';

/** Options of {@link createGatewayFetcher}. */
export interface GatewayFetcherOptions {
  /** `http`: the `/graphql` URL; `ws`: its websocket URL (`web/shared/session.ts` gatewayEndpoints()). */
  endpoints: { http: string; ws: string };
  /** The signed-in token (without `Bearer `), or null when signed out. */
  token: string | null;
  /**
   * Called with a sentence for the user when the gateway refuses the credentials, and with null
   * when it accepts them again (an HTTP answer but 401, a socket acknowledged).
   */
  onAuthProblem(message: string | null): void;
}

/** A fetcher for `<GraphiQL fetcher>` and the socket it owns. */
export interface GatewayFetcher {
  fetcher: Fetcher;
  /** Closes the websocket (a later subscription opens a new one). Idempotent. */
  dispose(): void;
}

/** Close codes of graphql-ws the gateway uses for refused credentials. */
const AUTH_CLOSE_CODES = [4401, 4403];

interface CloseLike {
  code: number;
  reason: string;
}

const isCloseLike = (value: unknown): value is CloseLike =>
  typeof value === 'object' && value !== null && typeof (value as CloseLike).code === 'number' && typeof (value as CloseLike).reason === 'string';

const isAuthClose = (value: unknown): value is CloseLike => isCloseLike(value) && AUTH_CLOSE_CODES.includes(value.code);

/** The sentence for a refused socket: `Token expired` or any other refusal. */
function socketRefusal(close: CloseLike): string {
  const what = /expired/i.test(close.reason) ? 'the token has expired' : 'no valid token';
  return `The gateway closed the subscription socket (${close.code} ${close.reason || 'Forbidden'}): ${what}. Sign in above with a token.`;
}

/** True when `body` is a GraphQL answer with an `UNAUTHENTICATED` error. */
function isUnauthenticated(body: unknown): boolean {
  const errors = (body as { errors?: unknown } | null)?.errors;
  return Array.isArray(errors) && errors.some((error) => (error as { extensions?: { code?: unknown } } | null)?.extensions?.code === 'UNAUTHENTICATED');
}

/** Headers from GraphiQL's headers editor as strings (it may hold any JSON). */
function editorHeaders(opts: FetcherOpts | undefined): Record<string, string> {
  const headers: Record<string, string> = {};
  for (const [name, value] of Object.entries(opts?.headers ?? {})) {
    if (value !== undefined && value !== null) headers[name] = String(value);
  }
  return headers;
}

/** The `Authorization` value to send: the headers editor's (any case), else the token's, else none. */
function authorizationFor(headers: Record<string, string>, token: string | null): string | undefined {
  const typed = Object.entries(headers).find(([name]) => name.toLowerCase() === 'authorization');
  if (typed) return typed[1];
  return token ? `Bearer ${token}` : undefined;
}

/**
 * `params` as sent, and whether its operation is a subscription. The query text is parsed here:
 * GraphiQL passes the editor's current text but its document and operation name as of its
 * last (debounced) parse, so right after an edit they may still be the previous query's; an
 * operation name the text does not define is then dropped when the text has one operation.
 */
function prepare(params: FetcherParams): { params: FetcherParams; subscription: boolean } {
  let document: DocumentNode;
  try {
    document = parse(params.query);
  } catch {
    return { params, subscription: false }; // the gateway answers the syntax error
  }
  const operations = document.definitions.filter((definition) => definition.kind === Kind.OPERATION_DEFINITION);
  let operationName = params.operationName ?? undefined;
  if (operationName !== undefined && operations.length === 1 && operations[0]!.name?.value !== operationName) operationName = operations[0]!.name?.value;
  const sent = { ...params, operationName: operationName ?? null };
  return { params: sent, subscription: getOperationAST(document, operationName)?.operation === 'subscription' };
}

/**
 * GraphiQL's fetcher for the gateway at `options.endpoints` (see the file comment). A GraphQL
 * answer of any HTTP status is returned as it is (GraphiQL shows it); a non-JSON answer becomes
 * one error naming the status. A subscription ends with the gateway's errors, or with one error
 * naming the close code when the socket is refused or lost for good (after graphql-ws's retries).
 */
export function createGatewayFetcher(options: GatewayFetcherOptions): GatewayFetcher {
  const { endpoints, token, onAuthProblem } = options;
  let socket: { client: Client; authorization: string | undefined } | null = null;

  /** The socket for `authorization`: the current one, else a new one replacing it. */
  const clientFor = (authorization: string | undefined): Client => {
    if (socket && socket.authorization === authorization) return socket.client;
    socket?.client.dispose();
    const client = createClient({
      url: endpoints.ws,
      lazy: true,
      connectionParams: authorization ? { authorization } : {},
      retryAttempts: 5,
      // graphql-ws retries a 4403; a refused token stays refused until the user signs in again.
      shouldRetry: (event) => isCloseLike(event) && !isAuthClose(event),
      on: {
        connected: () => onAuthProblem(null),
        closed: (event) => {
          if (isAuthClose(event)) onAuthProblem(socketRefusal(event));
        },
      },
    });
    socket = { client, authorization };
    return client;
  };

  const subscribe = (params: FetcherParams, authorization: string | undefined): Observable<ExecutionResult> => ({
    subscribe(observerOrNext?: unknown) {
      const observer = (typeof observerOrNext === 'function' ? { next: observerOrNext } : observerOrNext ?? {}) as Partial<{
        next(value: unknown): void;
        error(error: unknown): void;
        complete(): void;
      }>;
      const unsubscribe = clientFor(authorization).subscribe(
        { query: params.query, variables: params.variables ?? undefined, operationName: params.operationName ?? undefined },
        {
          next: (value) => observer.next?.(value),
          complete: () => observer.complete?.(),
          error: (error) => {
            if (isAuthClose(error)) observer.error?.({ message: socketRefusal(error) });
            else if (isCloseLike(error)) observer.error?.({ message: `The subscription socket closed (${error.code} ${error.reason}).` });
            else observer.error?.(error);
          },
        },
      );
      return { unsubscribe };
    },
  }) as Observable<ExecutionResult>;

  const fetcher: Fetcher = async (given, opts) => {
    const headers = editorHeaders(opts);
    const authorization = authorizationFor(headers, token);
    const { params, subscription } = prepare(given);
    if (subscription) return subscribe(params, authorization);
    const sent: Record<string, string> = {
      ...Object.fromEntries(Object.entries(headers).filter(([name]) => name.toLowerCase() !== 'authorization')),
      'content-type': 'application/json',
      accept: 'application/graphql-response+json, application/json;q=0.9',
      ...(authorization ? { authorization } : {}),
    };
    const response = await fetch(endpoints.http, { method: 'POST', headers: sent, body: JSON.stringify(params) });
    let body: unknown;
    try {
      body = await response.json();
    } catch {
      body = { errors: [{ message: `The gateway answered HTTP ${response.status} ${response.statusText}, not a GraphQL response.` }] };
    }
    if (response.status === 401 || isUnauthenticated(body)) {
      onAuthProblem(authorization ? 'The gateway refused the token (401): it may have expired or come from another gateway. Sign in again above.' : 'Not signed in: the gateway answered 401. Sign in above with a token.');
    } else {
      onAuthProblem(null);
    }
    return body as Awaited<ReturnType<Fetcher>>;
  };

  return {
    fetcher,
    dispose() {
      socket?.client.dispose();
      socket = null;
    },
  };
}
