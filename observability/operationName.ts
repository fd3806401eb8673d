/**
 * The `operation_name` label of the gateway's request metrics, bounded: every label value is a
 * separate time series in Prometheus, and operation names come from clients. A name is kept only
 * when it is a GraphQL name of at most {@link MAX_OPERATION_NAME_LENGTH} characters
 * (a GraphQL Name, spec section "Names": a letter or `_`, then letters, digits or `_`) and fewer than `maxNames` distinct names
 * were kept before; anything else is `other`, an operation without a name is `anonymous`.
 */

/** Label of an operation without a name. */
export const ANONYMOUS_OPERATION = 'anonymous';
/** Label of an operation whose name is not kept (not a short GraphQL name, or past the bound). */
export const OTHER_OPERATION = 'other';
/** Longest operation name kept as a label. */
export const MAX_OPERATION_NAME_LENGTH = 64;
/** Distinct operation names kept by default, per gateway. */
export const DEFAULT_MAX_OPERATION_NAMES = 100;

const GRAPHQL_NAME = new RegExp(`^[_A-Za-z][_0-9A-Za-z]{0,${MAX_OPERATION_NAME_LENGTH - 1}}$`);

/**
 * Returns the labeller: `(name) => label`. The first `maxNames` distinct valid names are kept
 * for the process's lifetime (first come, first kept); later new ones are `other`.
 * @throws RangeError when `maxNames` is not an integer from 0 to 10 000
 */
export function createOperationNameLabel(maxNames: number = DEFAULT_MAX_OPERATION_NAMES): (name: string | null | undefined) => string {
  if (!Number.isInteger(maxNames) || maxNames < 0 || maxNames > 10_000) {
    throw new RangeError(`maxNames must be an integer from 0 to 10000, got ${maxNames}`);
  }
  const kept = new Set<string>();
  return (name) => {
    if (name === null || name === undefined || name === '') return ANONYMOUS_OPERATION;
    if (typeof name !== 'string' || !GRAPHQL_NAME.test(name)) return OTHER_OPERATION;
    if (kept.has(name)) return name;
    if (kept.size >= maxNames) return OTHER_OPERATION;
    kept.add(name);
    return name;
  };
}
