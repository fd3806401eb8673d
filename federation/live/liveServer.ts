/**
 * The subgraph side of graphql-ws (issue 6): turns a `subscribe` message into a member of the
 * live feed of its field and arguments, and runs queries and mutations sent over the socket
 * once (`next` + `complete`).
 *
 * For a subscription it validates the document against the subgraph's schema, takes the root
 * field's coerced arguments, checks them with the field's {@link LiveField.normalize}, verifies
 * the `after` cursor (bound to field and arguments: `INVALID_CURSOR`, `CURSOR_EXPIRED`), then
 * joins the feed of `(field, arguments)` — created on first use, closed with its last member —
 * in the selection group of `(document, operation name, variables without after, actor, role)`.
 *
 * Wire contract with the gateway (see `ws/` and `gateway/subscriptions/`): every `next` carries
 * `extensions.flowgraph = { cursor, position }`; a subscribe with
 * `extensions.flowgraph.positions: true` also gets data-less position announcements.
 * `extensions.flowgraph.identity` / `correlationId` on the subscribe play the role of the
 * `x-flowgraph-identity` / `x-correlation-id` headers of HTTP requests: a subscribe carries
 * the caller's identity token signed by the gateway (`federation/gatewayIdentity.ts`; a token
 * that does not verify gets an `UNAUTHENTICATED` error); one without runs as the connection's
 * subject (gateway-signed, checked at `connection_init`) with role `viewer`: it may subscribe,
 * not mutate. Its subject and role are the operation's `actor` / `actorRole`.
 * A mutation sent over the socket needs role `operator`, like one over HTTP.
 *
 * Errors: every refusal or failure of an operation is an `error` message formatted by the
 * subgraph's `formatError` (federation/formatError.ts), codes kept and internals hidden, e.g.
 * `SERVICE_UNAVAILABLE` when the database cannot be reached as the first feed starts.
 */
import { createRequire } from 'node:module';
import type {
  DocumentNode,
  ExecutionResult,
  FieldNode,
  FragmentDefinitionNode,
  GraphQLError as GraphQLErrorType,
  GraphQLFormattedError,
  GraphQLSchema,
  OperationDefinitionNode,
} from 'graphql';
import { type EventStore, type LogPosition, type Logger } from '../../eventstore/index.ts';
import { IdentityVerificationError, type GatewayIdentity, type IdentityVerifier } from '../gatewayIdentity.ts';
import { contextFromIdentity, CORRELATION_HEADER, requireRole, type RequestContext } from '../requestContext.ts';
import type { CursorCodec } from './cursor.ts';
import { createFeed, type Feed, type FlowgraphExtensions, type SelectionGroup } from './feed.ts';
import { createLogFollower, type LogFollower } from './logFollower.ts';
import type { LiveField } from './liveField.ts';
import type { WsOperation } from '../../ws/server.ts';

// graphql-js as @apollo/subgraph built the schema with (CommonJS): see gateway/operationLimits.ts.
const require = createRequire(import.meta.url);
const graphql = require('graphql') as typeof import('graphql');
const { collectFields } = require('graphql/execution/collectFields.js') as {
  collectFields(
    schema: GraphQLSchema,
    fragments: Record<string, FragmentDefinitionNode>,
    variableValues: Record<string, unknown>,
    runtimeType: import('graphql').GraphQLObjectType,
    selectionSet: import('graphql').SelectionSetNode,
  ): Map<string, readonly FieldNode[]>;
};
const { GraphQLError, Kind, execute, getArgumentValues, getOperationAST, getVariableValues, parse, specifiedRules, validate } = graphql;

/** Most lexical tokens of a subscribe document (the gateway's default limit). */
export const MAX_DOCUMENT_TOKENS = 2000;

/** Options of {@link createLiveServer}. */
export interface LiveServerOptions {
  /** The subgraph's name, for log messages. */
  name: string;
  /** The subgraph schema (`buildSubgraphSchema`), whose `Subscription` type declares the fields. */
  schema: GraphQLSchema;
  store: EventStore;
  /** The subscription fields served; every field of `Subscription` should have one. */
  fields: readonly LiveField<any>[];
  codec: CursorCodec;
  /** The subgraph's error formatting (codes kept, internals hidden): `createSubgraphFormatError`. */
  formatError: (formatted: GraphQLFormattedError, error: unknown) => GraphQLFormattedError;
  logger: Logger;
  /** Verifies each subscribe's `extensions.flowgraph.identity` (the caller, signed by the gateway). */
  identityVerifier: IdentityVerifier;
  /** How often position announcements repeat while a feed is quiet, in ms. @default 30_000 (the feed's) */
  heartbeatIntervalMs?: number;
}

/** The live side of one subgraph. */
export interface LiveServer {
  /**
   * Handles one graphql-ws operation (give it to `createWsServer`'s `onSubscribe`). Never
   * rejects: a failure becomes the operation's `error` message, formatted by `formatError`.
   */
  onSubscribe(operation: WsOperation<unknown>): Promise<void>;
  /** Live feeds open now (distinct field and arguments). */
  readonly feeds: number;
  /** Ends every feed and the log follower. Idempotent. */
  close(): Promise<void>;
}

/** Creates the live server of a subgraph. */
export function createLiveServer(options: LiveServerOptions): LiveServer {
  const { schema, store, codec, logger } = options;
  const fields = new Map(options.fields.map((field) => [field.name, field]));
  const follower: LogFollower = createLogFollower({ store, logger });
  const feeds = new Map<string, Promise<Feed>>();
  let closed = false;

  const formatErrors = (errors: readonly GraphQLErrorType[]) => errors.map((error) => options.formatError(error.toJSON(), error));

  async function feedFor(field: LiveField<any>, args: Record<string, unknown>): Promise<Feed> {
    const key = `${field.name}\u0000${canonicalJson(args)}`;
    let pending = feeds.get(key);
    if (!pending) {
      pending = (async () => {
        const feed = createFeed({
          field,
          args,
          store,
          codec,
          logger,
          ...(options.heartbeatIntervalMs !== undefined ? { heartbeatIntervalMs: options.heartbeatIntervalMs } : {}),
          onEmpty: () => {
            if (feeds.get(key) === pending) feeds.delete(key);
            follower.unregister(feed);
          },
        });
        try {
          feed.start(await follower.register(feed));
        } catch (error) {
          feed.close();
          throw error;
        }
        return feed;
      })();
      feeds.set(key, pending);
      pending.catch(() => {
        if (feeds.get(key) === pending) feeds.delete(key);
      });
    }
    return pending;
  }

  /**
   * The context of one operation: the identity its `extensions.flowgraph.identity` carries, or,
   * when it carries none, the connection's subject (`{ gateway }`, verified at `connection_init`)
   * with role `viewer` (so such an operation may subscribe or query, never mutate).
   * @throws GraphQLError `UNAUTHENTICATED` when a token is present and does not verify, or when
   * there is neither one nor a connection identity
   */
  async function requestContextOf(operation: WsOperation<unknown>): Promise<RequestContext> {
    const flowgraph = objectOr(operation.payload.extensions?.flowgraph);
    const headers = operation.connection.request.headers;
    let identity: GatewayIdentity;
    try {
      const connectionIdentity = (operation.connection.identity as { gateway?: GatewayIdentity } | undefined)?.gateway;
      // No identity of its own: the subscribe runs as the connection's subject (verified at
      // connection_init: gateway-signed) with role viewer, enough to read and subscribe, never to
      // change anything. One that is present must verify.
      identity =
        flowgraph.identity === undefined && connectionIdentity !== undefined
          ? { subject: connectionIdentity.subject, role: 'viewer' }
          : await options.identityVerifier.verify(typeof flowgraph.identity === 'string' ? flowgraph.identity : undefined);
    } catch (error) {
      if (!(error instanceof IdentityVerificationError)) throw error;
      logger.debug({ reason: error.reason }, `${options.name}: subscribe without a valid gateway identity refused`);
      throw new GraphQLError(error.message, { extensions: { code: error.code } });
    }
    return contextFromIdentity(identity, (name) => {
      if (name === CORRELATION_HEADER && typeof flowgraph.correlationId === 'string') return flowgraph.correlationId;
      const value = headers[name];
      return Array.isArray(value) ? value[0] : value;
    });
  }

  /**
   * Serves one operation; whatever it throws (a GraphQLError on purpose, the database being
   * unreachable while the log follower starts, anything unexpected) reaches the client as an
   * `error` message formatted by the subgraph's `formatError`: code kept (`SERVICE_UNAVAILABLE`,
   * `INTERNAL_SERVER_ERROR`, ...), no stack, no SQL.
   */
  async function onSubscribe(operation: WsOperation<unknown>): Promise<void> {
    try {
      await serve(operation);
    } catch (error) {
      if (operation.stopped) return;
      const formatted: GraphQLFormattedError = isGraphQLErrorLike(error)
        ? error.toJSON()
        : { message: error instanceof Error ? error.message : String(error), extensions: { code: 'INTERNAL_SERVER_ERROR' } };
      operation.error([options.formatError(formatted, error)]);
    }
  }

  async function serve(operation: WsOperation<unknown>): Promise<void> {
    if (closed) throw new GraphQLError('The service is shutting down', { extensions: { code: 'SERVICE_UNAVAILABLE' } });
    const { payload } = operation;
    // Who asks comes first: an unauthenticated subscribe learns nothing of the schema.
    const contextValue = await requestContextOf(operation);
    let document: DocumentNode;
    try {
      document = parse(payload.query, { maxTokens: MAX_DOCUMENT_TOKENS });
    } catch (error) {
      throw error instanceof GraphQLError ? withCode(error, 'GRAPHQL_PARSE_FAILED') : error;
    }
    const validationErrors = validate(schema, document, specifiedRules);
    if (validationErrors.length > 0) return operation.error(formatErrors(validationErrors.map((e) => withCode(e, 'GRAPHQL_VALIDATION_FAILED'))));
    const definition = getOperationAST(document, payload.operationName ?? undefined);
    if (!definition) {
      throw new GraphQLError('The document has no operation of that name, or several and no operationName', {
        extensions: { code: 'OPERATION_RESOLUTION_FAILURE' },
      });
    }
    const coerced = getVariableValues(schema, definition.variableDefinitions ?? [], payload.variables ?? {});
    if (coerced.errors) return operation.error(formatErrors(coerced.errors.map((e) => withCode(e, 'BAD_USER_INPUT'))));
    const variables = coerced.coerced;

    if (definition.operation !== 'subscription') {
      if (definition.operation === 'mutation') requireRole(contextValue, 'operator', 'a mutation');
      const result = (await execute({ schema, document, variableValues: variables, contextValue, operationName: payload.operationName ?? undefined })) as ExecutionResult;
      operation.next(serialize(result, formatErrors));
      operation.complete();
      return;
    }

    const { fieldNode, fieldName } = rootField(schema, document, definition, variables);
    const field = fields.get(fieldName);
    const fieldDef = schema.getSubscriptionType()?.getFields()[fieldName];
    if (!field || !fieldDef) {
      throw new GraphQLError(`Subscription field "${fieldName}" is not served by this subgraph`, { extensions: { code: 'BAD_USER_INPUT' } });
    }
    const { after, ...rest } = getArgumentValues(fieldDef, fieldNode, variables) as Record<string, unknown>;
    let args: Record<string, unknown>;
    try {
      args = field.normalize(rest);
    } catch (error) {
      return operation.error([options.formatError(new GraphQLError((error as Error).message, { originalError: error as Error }).toJSON(), error)]);
    }
    let position: LogPosition | null = null;
    if (after !== undefined && after !== null) {
      try {
        position = codec.verify({ field: field.name, args }, String(after)).position;
      } catch (error) {
        return operation.error([options.formatError(new GraphQLError((error as Error).message, { originalError: error as Error }).toJSON(), error)]);
      }
    }

    const flowgraph = objectOr(payload.extensions?.flowgraph);
    const group = selectionGroup(document, definition, variables, fieldNode, fieldName, contextValue);
    let membership: ReturnType<Feed['join']> | undefined;
    operation.onStop(() => membership?.leave());
    for (let attempt = 0; ; attempt++) {
      const feed = await feedFor(field, args);
      if (operation.stopped) return;
      membership = feed.join({
        group,
        sink: operation,
        after: position,
        announcePositions: flowgraph.positions === true,
      });
      try {
        await membership.live;
        return;
      } catch (error) {
        // A feed that closed between lookup and join (its last member left): take the next one.
        if (operation.stopped || attempt >= 3 || closed) throw error;
      }
    }
  }

  function selectionGroup(
    document: DocumentNode,
    definition: OperationDefinitionNode,
    variables: Record<string, unknown>,
    fieldNode: FieldNode,
    fieldName: string,
    contextValue: RequestContext,
  ): SelectionGroup {
    const afterVariable = afterVariableOf(fieldNode, document);
    const keyVariables = Object.fromEntries(Object.entries(variables).filter(([name]) => name !== afterVariable));
    const key = canonicalJson([graphql.print(document), definition.name?.value ?? null, keyVariables, contextValue.meta.actor, contextValue.meta.actorRole]);
    return {
      key,
      async execute(update: Record<string, unknown>, extensions: FlowgraphExtensions): Promise<Buffer> {
        let result: ExecutionResult;
        try {
          result = (await execute({
            schema,
            document,
            rootValue: { [fieldName]: update },
            contextValue,
            variableValues: variables,
            operationName: definition.name?.value,
          })) as ExecutionResult;
        } catch (error) {
          result = { errors: [error instanceof GraphQLError ? error : new GraphQLError('Internal server error', { originalError: error as Error })] };
        }
        return serialize(result, formatErrors, extensions);
      },
    };
  }

  return {
    onSubscribe,
    get feeds() {
      return feeds.size;
    },
    async close() {
      if (closed) return;
      closed = true;
      const open = await Promise.allSettled([...feeds.values()]);
      for (const settled of open) if (settled.status === 'fulfilled') settled.value.close();
      feeds.clear();
      await follower.close();
    },
  };
}

/** The single root field of a subscription (fragments followed), as graphql-js's executor finds it. */
function rootField(
  schema: GraphQLSchema,
  document: DocumentNode,
  definition: OperationDefinitionNode,
  variables: Record<string, unknown>,
): { fieldNode: FieldNode; fieldName: string } {
  const type = schema.getSubscriptionType();
  if (!type) throw new GraphQLError('This subgraph has no subscriptions', { extensions: { code: 'BAD_USER_INPUT' } });
  const fragments: Record<string, FragmentDefinitionNode> = {};
  for (const definitionNode of document.definitions) {
    if (definitionNode.kind === Kind.FRAGMENT_DEFINITION) fragments[definitionNode.name.value] = definitionNode;
  }
  const collected = collectFields(schema, fragments, variables, type, definition.selectionSet);
  const first = [...collected.values()][0]?.[0];
  if (!first || collected.size !== 1) throw new GraphQLError('A subscription selects exactly one root field', { extensions: { code: 'GRAPHQL_VALIDATION_FAILED' } });
  return { fieldNode: first, fieldName: first.name.value };
}

/** The variable the root field's `after` argument reads, when it is used nowhere else in the document. */
function afterVariableOf(fieldNode: FieldNode, document: DocumentNode): string | undefined {
  const value = fieldNode.arguments?.find((argument) => argument.name.value === 'after')?.value;
  if (value?.kind !== Kind.VARIABLE) return undefined;
  let uses = 0;
  graphql.visit(document, {
    Variable(node) {
      if (node.name.value === value.name.value) uses++;
    },
  });
  // One use in the definition ($after: String) and one as the argument.
  return uses <= 2 ? value.name.value : undefined;
}

function serialize(
  result: ExecutionResult,
  formatErrors: (errors: readonly GraphQLErrorType[]) => GraphQLFormattedError[],
  flowgraph?: FlowgraphExtensions,
): Buffer {
  const body: Record<string, unknown> = {};
  if (result.errors && result.errors.length > 0) body.errors = formatErrors(result.errors);
  if ('data' in result) body.data = result.data;
  if (flowgraph) body.extensions = { flowgraph };
  return Buffer.from(JSON.stringify(body));
}

function withCode(error: GraphQLErrorType, code: string): GraphQLErrorType {
  if (error.extensions?.code) return error;
  return new GraphQLError(error.message, { nodes: error.nodes, source: error.source, positions: error.positions, path: error.path, extensions: { ...error.extensions, code } });
}

/** A GraphQLError of either graphql-js build (CommonJS for Apollo, ESM elsewhere). */
function isGraphQLErrorLike(value: unknown): value is GraphQLErrorType {
  return value instanceof Error && Object.prototype.toString.call(value) === '[object GraphQLError]' && typeof (value as { toJSON?: unknown }).toJSON === 'function';
}

function objectOr(value: unknown): Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value) ? (value as Record<string, unknown>) : {};
}

/** JSON with object keys sorted recursively (`undefined` members dropped): equal values, equal text. */
export function canonicalJson(value: unknown): string {
  return JSON.stringify(value, (_key, inner: unknown) => {
    if (inner === null || typeof inner !== 'object' || Array.isArray(inner)) return inner;
    return Object.fromEntries(Object.entries(inner as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
  });
}
