/**
 * The roles of flowgraph's principals (DESIGN.md, "Auth"), shared by the gateway (which maps a
 * token's role claim to one) and the subgraphs (which check the role the gateway's signed
 * identity carries). Roles are ordered: each one may do everything the roles before it may.
 *
 * - `viewer`: queries and subscriptions;
 * - `operator`: plus mutations;
 * - `admin`: plus operations that rebuild, replay or release parked events (fields marked
 *   `@requiresScopes(scopes: [["admin"]])` in a subgraph's SDL).
 */

/** The roles, least to most privileged. */
export const ROLES = ['viewer', 'operator', 'admin'] as const;

/** A principal's role. */
export type Role = (typeof ROLES)[number];

/** Whether `value` names a role (case-sensitive: `viewer`, `operator`, `admin`). */
export function isRole(value: unknown): value is Role {
  return typeof value === 'string' && (ROLES as readonly string[]).includes(value);
}

/** Whether a principal with `role` may do what `required` may (`admin` ≥ `operator` ≥ `viewer`). */
export function roleAllows(role: Role, required: Role): boolean {
  return ROLES.indexOf(role) >= ROLES.indexOf(required);
}

/**
 * The scopes a role holds in `@requiresScopes` terms (Apollo Federation's authorization
 * directive): its own name and those of every lesser role (`admin` → `['viewer', 'operator', 'admin']`).
 */
export function scopesOf(role: Role): readonly Role[] {
  return ROLES.slice(0, ROLES.indexOf(role) + 1);
}

/** The least role that may run a GraphQL operation of this type: `viewer` for queries and subscriptions, `operator` for mutations. */
export function roleForOperationType(operation: 'query' | 'mutation' | 'subscription'): Role {
  return operation === 'mutation' ? 'operator' : 'viewer';
}
