/**
 * How the gateway talks to one subgraph: Apollo's `RemoteGraphQLDataSource` plus flowgraph's
 * request headers, request timeout, error codes and error paths.
 */
import { createRequire } from 'node:module';
import { RemoteGraphQLDataSource, type GraphQLDataSourceProcessOptions } from '@apollo/gateway';
import type { DocumentNode, GraphQLFormattedError, SelectionSetNode } from 'graphql';
import { GraphQLError } from 'graphql';
import { IDENTITY_HEADER, identitySignerFromEnv, type GatewayIdentity, type IdentitySigner } from '../federation/gatewayIdentity.ts';
import type { GatewayContext } from './context.ts';
import { tracedSubgraphFetch } from '../observability/httpSpans.ts';
import { tracingOn } from '../observability/tracer.ts';
import { GatewayErrorCode } from './errors.ts';

/** graphql-js as Apollo Gateway loads it (CommonJS), for the fetch's `DocumentNode` it hands over. */
const graphql = createRequire(import.meta.url)('graphql') as typeof import('graphql');
const { Kind, parse } = graphql;

/** Header carrying the request's correlation id to subgraphs (event metadata `correlation_id`). */
export const CORRELATION_ID_HEADER = 'x-correlation-id';
/** W3C Trace Context header: the client's forwarded unchanged with tracing off, the fetch span's with tracing on. */
export const TRACEPARENT_HEADER = 'traceparent';

/** The longest delay Node's timers (and `AbortSignal.timeout`) take, in ms: 2^31 - 1; a longer one fires after 1 ms. */
export const MAX_TIMER_DELAY_MS = 2 ** 31 - 1;

/**
 * Default of {@link SubgraphDataSourceOptions.timeoutMs}: 30 s. Far above the slowest request the
 * repository's subgraphs serve (an `ingestDocument` of a 10 MiB text, a `trace(first: 10000)`:
 * a few seconds), far below "for ever".
 */
export const DEFAULT_SUBGRAPH_TIMEOUT_MS = 30_000;

/** Options of {@link SubgraphDataSource}. */
export interface SubgraphDataSourceOptions {
  /** The subgraph's name in the supergraph (`extensions.serviceName` of its errors). */
  name: string;
  /** Its GraphQL endpoint. */
  url: string;
  /**
   * Longest wait for one request's answer, headers and body, in ms; past it the request is
   * aborted (`AbortSignal.timeout`) and its fields fail with `SUBGRAPH_TIMEOUT`. 0 = no timeout.
   * @default DEFAULT_SUBGRAPH_TIMEOUT_MS (30 s)
   */
  timeoutMs?: number;
  /**
   * Signs the identity sent to the subgraph in `x-flowgraph-identity`
   * (`federation/gatewayIdentity.ts`; tokens cached per subject and role). Give every data
   * source of a gateway the same one, so they share its cache.
   * @default `identitySignerFromEnv(process.env)` (ConfigError when FLOWGRAPH_GATEWAY_SIGNING_KEY is unset)
   */
  identitySigner?: IdentitySigner;
  /**
   * Merge identical query fetches in flight: a `query` whose URL, body (document and variables)
   * and forwarded identity equal those of a fetch still waiting for its answer gets that answer
   * instead of a request of its own (mutations never merge). @default true
   */
  dedupeInFlight?: boolean;
}

/** The answer of a merged fetch, read once and replayed to each caller as a fresh `Response`. */
interface SharedAnswer {
  url: string;
  status: number;
  statusText: string;
  headers: Headers;
  body: string;
}

/**
 * What each caller sharing an answer gets: the part of the Fetch `Response` that
 * RemoteGraphQLDataSource reads (`ok`, `status`, `statusText`, `url`, `headers`, `json()`,
 * `text()`). Each `json()` parses the text again, so no two callers share (and mutate) one
 * object; and no stream is built around text already read (a `new Response(text)` per caller
 * cost the distinct-requests workload more CPU than merging saved: bench:gateway --peers).
 */
class SharedResponse {
  readonly #answer: SharedAnswer;
  constructor(answer: SharedAnswer) {
    this.#answer = answer;
  }
  get ok(): boolean {
    return this.#answer.status >= 200 && this.#answer.status < 300;
  }
  get status(): number {
    return this.#answer.status;
  }
  get statusText(): string {
    return this.#answer.statusText;
  }
  get url(): string {
    return this.#answer.url;
  }
  get headers(): Headers {
    return this.#answer.headers;
  }
  async text(): Promise<string> {
    return this.#answer.body;
  }
  async json(): Promise<unknown> {
    return JSON.parse(this.#answer.body);
  }
}

/** A subgraph request body's operation is a query: `{"query":"query …"` or `"{…"` first (how Apollo's planner prints it). */
const QUERY_BODY = /^\{"query":"\s*(?:query\b|\{)/;

/**
 * Who the gateway says it is on requests that carry no client's operation (schema loading,
 * health checks): itself, with the least role.
 */
export const GATEWAY_INTERNAL_IDENTITY: GatewayIdentity = Object.freeze({ subject: 'gateway', role: 'viewer' });

/**
 * A data source for subgraph `name` at `url`. Every request it sends carries:
 * - `x-flowgraph-identity`: a short-lived token signed with the gateway's key naming the
 *   identity `gateway/auth.ts` verified (`federation/gatewayIdentity.ts`; never a header the
 *   client sent: the subgraph request's headers are built here from scratch); requests of no
 *   client operation (schema loading, health checks) carry {@link GATEWAY_INTERNAL_IDENTITY};
 * - `x-correlation-id`: the client's, or the one the gateway generated for the request;
 * - `traceparent`: with tracing off, the client's when it sent one; with tracing on
 *   (`observability/tracing.ts`), the context of the fetch's CLIENT span (a child of the
 *   gateway's spans, which continue the client's trace when its header is valid).
 *
 * Failures become GraphQL errors with `extensions.serviceName` and a code from
 * `gateway/errors.ts`: `SUBGRAPH_UNAVAILABLE` when the subgraph cannot be reached,
 * `SUBGRAPH_TIMEOUT` when it has not answered within `timeoutMs`, `SUBGRAPH_REQUEST_FAILED` for
 * a non-2xx answer (401/403 keep `UNAUTHENTICATED`/`FORBIDDEN`) or an unreadable body.
 * Messages never include the subgraph's URL, a stack trace or the subgraph's raw body.
 *
 * For an operation of a client, a failed request is answered to the gateway as the subgraph's
 * GraphQL response `{ errors }` with one error per field the request asked for, each with its
 * `path` (`[rootField]`, or `['_entities', i, field]` for the i-th entity of an entity fetch,
 * which the gateway maps to the entity's place in the client's response): every field the
 * subgraph should have resolved is null with an error that says where (GraphQL spec,
 * "Handling Field Errors"), and what other subgraphs resolved stays.
 */
export class SubgraphDataSource extends RemoteGraphQLDataSource<GatewayContext> {
  readonly name: string;
  /** The request timeout in ms (0 = none). */
  readonly timeoutMs: number;
  readonly #signer: IdentitySigner;

  constructor(options: SubgraphDataSourceOptions) {
    const timeoutMs = options.timeoutMs ?? DEFAULT_SUBGRAPH_TIMEOUT_MS;
    if (!Number.isInteger(timeoutMs) || timeoutMs < 0 || timeoutMs > MAX_TIMER_DELAY_MS) {
      throw new RangeError(`Subgraph "${options.name}": timeoutMs must be an integer from 0 to ${MAX_TIMER_DELAY_MS} (Node's longest timer delay), got ${timeoutMs}`);
    }
    // Node's own fetch (undici, keep-alive per origin), not Apollo's default make-fetch-happen:
    // profiled in bench:subscriptions, the default fetcher was 35 % of the gateway's busy time
    // per entity fetch (an `Error().stack` captured per request, source-mapped under tsx).
    // The timeout's signal also aborts reading the body (undici), so it bounds the whole answer.
    // Tracing on (observability/tracing.ts): a CLIENT span per fetch, its context in `traceparent`.
    const send = (input: string, init: RequestInit) => {
      const request = timeoutMs > 0 ? { ...init, signal: withTimeout(init.signal, timeoutMs) } : init;
      return tracingOn() ? tracedSubgraphFetch(options.name, input, request as Parameters<typeof tracedSubgraphFetch>[2]) : globalThis.fetch(input, request);
    };
    // Identical queries in flight share one fetch (Hive Gateway's lever in issue 13's table):
    // keyed by URL, forwarded identity and body; the first caller's request (its correlation id
    // and trace context) is the one the subgraph sees; the answer is read once and replayed.
    const inFlight = new Map<string, Promise<SharedAnswer>>();
    const dedupe = options.dedupeInFlight ?? true;
    const fetcher = async (input: string, init: RequestInit = {}): Promise<Response> => {
      const body = init.body;
      if (!dedupe || typeof body !== 'string' || !QUERY_BODY.test(body)) return send(input, init);
      const key = `${input}\n${headerOf(init.headers, IDENTITY_HEADER) ?? ''}\n${body}`;
      let shared = inFlight.get(key);
      if (!shared) {
        shared = send(input, init).then(async (response) => ({
          url: response.url,
          status: response.status,
          statusText: response.statusText,
          headers: response.headers,
          body: await response.text(),
        }));
        inFlight.set(key, shared);
        const forget = () => inFlight.delete(key);
        shared.then(forget, forget);
      }
      return new SharedResponse(await shared) as unknown as Response;
    };
    super({ url: options.url, fetcher: fetcher as unknown as RemoteGraphQLDataSource['fetcher'] });
    this.name = options.name;
    this.timeoutMs = timeoutMs;
    this.#signer = options.identitySigner ?? identitySignerFromEnv(process.env);
  }

  override async process(options: GraphQLDataSourceProcessOptions<GatewayContext>): ReturnType<RemoteGraphQLDataSource['process']> {
    try {
      return await super.process(options);
    } catch (error) {
      // Schema loading and health checks have no client fields to attach the failure to.
      if (options.kind !== 'incoming operation' || !isGatewayError(error, this.name)) throw error;
      const document = options.document ?? parse(options.request.query ?? '');
      return { errors: fieldErrors(error, document, options.request.variables) };
    }
  }

  override async willSendRequest(options: GraphQLDataSourceProcessOptions<GatewayContext>): Promise<void> {
    const headers = options.request.http?.headers;
    if (!headers) return;
    // Schema loading and health checks carry no incoming request: the gateway speaks for itself.
    if (options.kind !== 'incoming operation') {
      headers.set(IDENTITY_HEADER, await this.#signer.sign(GATEWAY_INTERNAL_IDENTITY));
      return;
    }
    const context = options.context as Partial<GatewayContext>;
    if (context.identity) headers.set(IDENTITY_HEADER, await this.#signer.sign({ subject: context.identity.subject, role: context.identity.role }));
    if (context.correlationId) headers.set(CORRELATION_ID_HEADER, context.correlationId);
    // With tracing on, the fetch's CLIENT span injects its own context instead (tracedSubgraphFetch).
    if (context.traceparent && !tracingOn()) headers.set(TRACEPARENT_HEADER, context.traceparent);
  }

  override didEncounterError(error: Error, _fetchRequest: unknown, fetchResponse?: { status: number }): void {
    if (isTimeout(error)) {
      throw new GraphQLError(`Subgraph "${this.name}" did not answer within ${this.timeoutMs} ms`, {
        extensions: { code: GatewayErrorCode.SubgraphTimeout, serviceName: this.name },
        originalError: error,
      });
    }
    if (error instanceof GraphQLError) {
      // errorFromResponse's error: keep its code, drop `extensions.response` (URL and raw body).
      const { response: _response, ...extensions } = error.extensions as Record<string, unknown>;
      throw new GraphQLError(`Subgraph "${this.name}" answered HTTP ${fetchResponse?.status ?? 'error'}`, {
        extensions: {
          ...extensions,
          code: extensions.code ?? GatewayErrorCode.SubgraphRequestFailed,
          serviceName: this.name,
        },
      });
    }
    if (fetchResponse === undefined) {
      throw new GraphQLError(`Subgraph "${this.name}" is unavailable`, {
        extensions: { code: GatewayErrorCode.SubgraphUnavailable, serviceName: this.name },
        originalError: error,
      });
    }
    throw new GraphQLError(`Subgraph "${this.name}" sent an unreadable response`, {
      extensions: { code: GatewayErrorCode.SubgraphRequestFailed, serviceName: this.name },
      originalError: error,
    });
  }
}

/** A request header's value from `RequestInit.headers` (a Headers, pairs or a record), or undefined. */
function headerOf(headers: RequestInit['headers'], name: string): string | undefined {
  if (!headers) return undefined;
  if (headers instanceof Headers) return headers.get(name) ?? undefined;
  if (Array.isArray(headers)) return headers.find(([key]) => key.toLowerCase() === name)?.[1];
  const record = headers as Record<string, string>;
  return record[name] ?? Object.entries(record).find(([key]) => key.toLowerCase() === name)?.[1];
}

/** `signal` (the caller's, if any) combined with a timeout of `ms`. */
function withTimeout(signal: AbortSignal | null | undefined, ms: number): AbortSignal {
  const timeout = AbortSignal.timeout(ms);
  return signal ? AbortSignal.any([signal, timeout]) : timeout;
}

/** Whether `error` is (or was caused by) `AbortSignal.timeout` firing. */
function isTimeout(error: unknown): boolean {
  for (let current = error, hops = 0; current instanceof Error && hops < 5; current = current.cause, hops++) {
    if (current.name === 'TimeoutError') return true;
  }
  return false;
}

/** Whether `error` is one {@link SubgraphDataSource.didEncounterError} made for subgraph `name`. */
function isGatewayError(error: unknown, name: string): error is { message: string; extensions: Record<string, unknown> } {
  const extensions = (error as { extensions?: Record<string, unknown> } | null)?.extensions;
  return typeof (error as Error | null)?.message === 'string' && extensions?.serviceName === name;
}

/**
 * One copy of `error` per field the fetch `document` asks for, with its response path: each
 * root field (`[key]`), or for an entity fetch (`_entities(representations: …)`) each field
 * selected for the type of each representation (`['_entities', i, key]`; `['_entities', i]` when
 * only `__typename` is). Fragments are followed; `__typename` is no field of the subgraph's.
 */
function fieldErrors(
  error: { message: string; extensions: Record<string, unknown> },
  document: DocumentNode,
  variables: Readonly<Record<string, unknown>> | undefined,
): GraphQLFormattedError[] {
  const formatted = (path: ReadonlyArray<string | number>): GraphQLFormattedError => ({ message: error.message, path, extensions: error.extensions });
  const operation = document.definitions.find((definition) => definition.kind === Kind.OPERATION_DEFINITION);
  if (!operation || operation.kind !== Kind.OPERATION_DEFINITION) return [{ message: error.message, extensions: error.extensions }];
  const fragments = new Map<string, { typeCondition: string; selectionSet: SelectionSetNode }>();
  for (const definition of document.definitions) {
    if (definition.kind === Kind.FRAGMENT_DEFINITION) {
      fragments.set(definition.name.value, { typeCondition: definition.typeCondition.name.value, selectionSet: definition.selectionSet });
    }
  }
  const root = responseKeys(operation.selectionSet, undefined, fragments);
  const entities = root.find((field) => field.name === '_entities');
  if (!entities) return root.map((field) => formatted([field.key]));
  const representations = Array.isArray(variables?.representations) ? (variables.representations as unknown[]) : [];
  const errors: GraphQLFormattedError[] = [];
  representations.forEach((representation, index) => {
    const typename = (representation as { __typename?: unknown } | null)?.__typename;
    const fields = entities.selectionSet ? responseKeys(entities.selectionSet, typeof typename === 'string' ? typename : undefined, fragments) : [];
    if (fields.length === 0) errors.push(formatted([entities.key, index]));
    for (const field of fields) errors.push(formatted([entities.key, index, field.key]));
  });
  return errors.length > 0 ? errors : [formatted([entities.key])];
}

/** A document's fragment definitions by name. */
type Fragments = ReadonlyMap<string, { typeCondition: string; selectionSet: SelectionSetNode }>;

/**
 * The distinct fields (response key, name, selection) of `selectionSet`, `__typename` aside,
 * following inline fragments and spreads whose type condition is absent or `typename` (all
 * when `typename` is undefined).
 */
function responseKeys(
  selectionSet: SelectionSetNode,
  typename: string | undefined,
  fragments: Fragments,
): Array<{ key: string; name: string; selectionSet: SelectionSetNode | undefined }> {
  const fields = new Map<string, { key: string; name: string; selectionSet: SelectionSetNode | undefined }>();
  const seenFragments = new Set<string>();
  const visit = (set: SelectionSetNode) => {
    for (const selection of set.selections) {
      if (selection.kind === Kind.FIELD) {
        const key = selection.alias?.value ?? selection.name.value;
        if (selection.name.value !== '__typename' && !fields.has(key)) fields.set(key, { key, name: selection.name.value, selectionSet: selection.selectionSet });
      } else if (selection.kind === Kind.INLINE_FRAGMENT) {
        const condition = selection.typeCondition?.name.value;
        if (condition === undefined || typename === undefined || condition === typename) visit(selection.selectionSet);
      } else {
        const name = selection.name.value;
        const fragment = fragments.get(name);
        if (fragment && !seenFragments.has(name) && (typename === undefined || fragment.typeCondition === typename)) {
          seenFragments.add(name);
          visit(fragment.selectionSet);
        }
      }
    }
  };
  visit(selectionSet);
  return [...fields.values()];
}
