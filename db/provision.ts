/**
 * Creates each service's database and login role (DESIGN.md, "Databases and isolation": one
 * database per service, one login role per service that owns its database and has no rights
 * on the others).
 */
import { createHash, createHmac, pbkdf2Sync } from 'node:crypto';
import pg from 'pg';
import { loadOrCreateSecret } from './secrets.ts';
import { withDatabase } from './url.ts';

/** What to create for one service. */
export interface ServiceProvisionSpec {
  service: string;
  /** Login password of the role. Keep it stable (see `loadOrCreateSecret`) so re-runs change nothing. */
  password: string;
  /** Database name. @default `flowgraph_<service>` */
  database?: string;
  /** Role name. @default `flowgraph_<service>` */
  role?: string;
}

/** The outcome for one service. */
export interface ProvisionedService {
  service: string;
  database: string;
  role: string;
  /** Login URL of the role on its database (host and port of the admin URL). */
  url: string;
  /** What this run changed, e.g. `['created role', 'created database']`; [] when nothing. */
  changes: string[];
}

/** Provisioning failed for a service; `cause` is the PostgreSQL error. */
export class ProvisionError extends Error {
  override readonly name = 'ProvisionError';
  constructor(readonly service: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
  }
}

const IDENTIFIER = /^[a-z_][a-z0-9_]{0,62}$/;
/** Serialises concurrent provisioning runs on one server (roles are server-wide). */
const PROVISION_LOCK_KEY = 7_270_001;

/**
 * For every spec, through the superuser connection `adminUrl`:
 * - creates the login role (NOSUPERUSER NOCREATEDB NOCREATEROLE) or, when it exists, resets
 *   its password only if the stored SCRAM/MD5 verifier does not match (so a re-run with the
 *   same password changes nothing);
 * - creates the database owned by the role (or hands an existing one to the role);
 * - `REVOKE CONNECT, TEMPORARY ON DATABASE ... FROM PUBLIC`, so other services' roles cannot
 *   connect to it (the owner keeps its rights).
 *
 * Idempotent and safe to run concurrently (an advisory lock serialises runs).
 * Not revoked: PUBLIC's CONNECT on the server's own `postgres`/`template1` databases, which
 * this server-wide step does not own.
 * @returns one entry per spec, in order, with the role's login URL.
 * @throws ProvisionError naming the service (bad name, or a PostgreSQL error as `cause`).
 */
export async function provisionServiceDatabases(adminUrl: string, specs: ServiceProvisionSpec[]): Promise<ProvisionedService[]> {
  const admin = new pg.Client({ connectionString: adminUrl });
  admin.on('error', () => {});
  await admin.connect();
  try {
    await admin.query('SELECT pg_advisory_lock($1)', [PROVISION_LOCK_KEY]);
    const results: ProvisionedService[] = [];
    for (const spec of specs) results.push(await provisionOne(admin, adminUrl, spec));
    return results;
  } finally {
    await admin.end().catch(() => {});
  }
}

async function provisionOne(admin: pg.Client, adminUrl: string, spec: ServiceProvisionSpec): Promise<ProvisionedService> {
  const database = spec.database ?? `flowgraph_${spec.service}`;
  const role = spec.role ?? `flowgraph_${spec.service}`;
  for (const name of [database, role]) {
    if (!IDENTIFIER.test(name)) {
      throw new ProvisionError(spec.service, `${JSON.stringify(name)} is not a valid name: lowercase letters, digits and _, at most 63, not starting with a digit`);
    }
  }
  const changes: string[] = [];
  try {
    const { rows: roles } = await admin.query<{ rolpassword: string | null }>(
      'SELECT rolpassword FROM pg_authid WHERE rolname = $1', [role]);
    if (roles.length === 0) {
      await admin.query(`CREATE ROLE "${role}" LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE PASSWORD ${pg.escapeLiteral(spec.password)}`);
      changes.push('created role');
    } else if (!passwordMatches(roles[0]!.rolpassword, role, spec.password)) {
      await admin.query(`ALTER ROLE "${role}" LOGIN PASSWORD ${pg.escapeLiteral(spec.password)}`);
      changes.push('set role password');
    }

    const { rows: dbs } = await admin.query<{ owner: string; acl: string | null }>(
      `SELECT pg_get_userbyid(datdba) AS owner, datacl::text AS acl FROM pg_database WHERE datname = $1`, [database]);
    if (dbs.length === 0) {
      await admin.query(`CREATE DATABASE "${database}" OWNER "${role}" ENCODING 'UTF8' TEMPLATE template0`);
      changes.push('created database');
    } else if (dbs[0]!.owner !== role) {
      await admin.query(`ALTER DATABASE "${database}" OWNER TO "${role}"`);
      changes.push('changed database owner');
    }
    const acl = dbs[0]?.acl ?? null;
    // A NULL acl means the defaults, which include PUBLIC's CONNECT and TEMPORARY (`=Tc/owner`).
    if (acl === null || /[{,]=[A-Za-z]*[cT]/.test(acl)) {
      await admin.query(`REVOKE CONNECT, TEMPORARY ON DATABASE "${database}" FROM PUBLIC`);
      changes.push('revoked PUBLIC connect');
    }
  } catch (cause) {
    throw new ProvisionError(spec.service, `provisioning ${spec.service} (database ${database}, role ${role}) failed: ${(cause as Error).message}`, { cause });
  }
  const u = new URL(withDatabase(adminUrl, database));
  u.username = role;
  u.password = spec.password;
  return { service: spec.service, database, role, url: u.toString(), changes };
}

/**
 * Whether a `pg_authid.rolpassword` verifier was made from `password`: SCRAM-SHA-256
 * (RFC 5802/7677: StoredKey = H(HMAC(SaltedPassword, "Client Key")), ServerKey =
 * HMAC(SaltedPassword, "Server Key")) or the legacy `md5` + md5(password || role).
 * Passwords are used as given (no SASLprep: generated passwords are ASCII).
 */
export function passwordMatches(verifier: string | null, role: string, password: string): boolean {
  if (!verifier) return false;
  const scram = /^SCRAM-SHA-256\$(\d+):([^$]+)\$([^:]+):(.+)$/.exec(verifier);
  if (scram) {
    const [, iterations, salt, storedKey, serverKey] = scram;
    const salted = pbkdf2Sync(password, Buffer.from(salt!, 'base64'), Number(iterations), 32, 'sha256');
    const clientKey = createHmac('sha256', salted).update('Client Key').digest();
    return createHash('sha256').update(clientKey).digest('base64') === storedKey
      && createHmac('sha256', salted).update('Server Key').digest('base64') === serverKey;
  }
  if (verifier.startsWith('md5')) {
    return verifier === `md5${createHash('md5').update(password + role).digest('hex')}`;
  }
  return false;
}

/**
 * {@link provisionServiceDatabases} for the embedded default: each service's password is
 * generated once and kept in `secretsFile` (key `role:<service>`, mode 600), so restarts
 * reuse it. Used by `npm start` when no service URL is configured.
 * @param secretsFile e.g. `${FLOWGRAPH_DATA_DIR}/secrets.json`
 * @returns service name → login URL of its role on its database.
 */
export async function provisionWithStoredPasswords(
  adminUrl: string, services: readonly string[], secretsFile: string,
): Promise<Record<string, string>> {
  const specs: ServiceProvisionSpec[] = [];
  for (const service of services) specs.push({ service, password: await loadOrCreateSecret(secretsFile, `role:${service}`) });
  const provisioned = await provisionServiceDatabases(adminUrl, specs);
  return Object.fromEntries(provisioned.map((p) => [p.service, p.url]));
}
