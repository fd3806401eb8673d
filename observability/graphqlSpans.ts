/**
 * A subgraph's GraphQL spans: the operation's type and name on the request's SERVER span (an
 * Apollo Server plugin), and an INTERNAL span per root field resolver of `Query` and `Mutation`,
 * active while the resolver runs so that the work it does (an event store append) is its child.
 *
 * Why resolver spans and not a span opened by the plugin: a plugin hook cannot make its span the
 * active context of the execution that follows, so the appends would not be its children.
 */
import type { ApolloServerPlugin, BaseContext } from '@apollo/server';
import { trace } from '@opentelemetry/api';
import { recordError, tracer, tracingOn } from './tracer.ts';

/** Root types whose field resolvers get a span. */
const TRACED_ROOTS = ['Query', 'Mutation'] as const;

/**
 * Sets `graphql.operation.type` (`query`, `mutation`) and `graphql.operation.name` (when the
 * operation has one) on the active span (the SERVER span of `federation/httpServer.ts`) once
 * Apollo resolved the operation. Nothing when tracing is off.
 */
export function graphqlOperationPlugin<TContext extends BaseContext>(): ApolloServerPlugin<TContext> {
  return {
    async requestDidStart() {
      if (!tracingOn()) return;
      return {
        async didResolveOperation({ operation, operationName }) {
          const span = trace.getActiveSpan();
          if (!span) return;
          if (operation) span.setAttribute('graphql.operation.type', operation.operation);
          if (operationName) span.setAttribute('graphql.operation.name', operationName);
        },
      };
    },
  };
}

/**
 * `resolvers` whose `Query` and `Mutation` field resolvers (functions or `{ resolve }` objects)
 * run, when tracing is on, inside an active INTERNAL span `resolve <Type>.<field>` with
 * `graphql.operation.type` (`query`/`mutation`) and `graphql.field.name`; a throw or rejection
 * sets status ERROR. With tracing off a call costs one boolean test. Other types are untouched.
 */
export function traceRootResolvers<R extends Record<string, unknown>>(resolvers: R): R {
  const out: Record<string, unknown> = { ...resolvers };
  for (const root of TRACED_ROOTS) {
    const fields = resolvers[root] as Record<string, unknown> | undefined;
    if (!fields || typeof fields !== 'object') continue;
    const wrapped: Record<string, unknown> = {};
    for (const [field, resolver] of Object.entries(fields)) {
      if (typeof resolver === 'function') wrapped[field] = traced(root, field, resolver as Resolver);
      else if (resolver && typeof resolver === 'object' && typeof (resolver as { resolve?: unknown }).resolve === 'function') {
        wrapped[field] = { ...resolver, resolve: traced(root, field, (resolver as { resolve: Resolver }).resolve) };
      } else wrapped[field] = resolver;
    }
    out[root] = wrapped;
  }
  return out as R;
}

type Resolver = (...args: unknown[]) => unknown;

function traced(root: string, field: string, resolve: Resolver): Resolver {
  const name = `resolve ${root}.${field}`;
  const attributes = { 'graphql.operation.type': root.toLowerCase(), 'graphql.field.name': field };
  return function (this: unknown, ...args: unknown[]) {
    if (!tracingOn()) return resolve.apply(this, args);
    return tracer().startActiveSpan(name, { attributes }, (span) => {
      let result: unknown;
      try {
        result = resolve.apply(this, args);
      } catch (error) {
        recordError(span, error);
        span.end();
        throw error;
      }
      if (result instanceof Promise) {
        return result.then(
          (value) => {
            span.end();
            return value;
          },
          (error: unknown) => {
            recordError(span, error);
            span.end();
            throw error;
          },
        );
      }
      span.end();
      return result;
    });
  };
}
