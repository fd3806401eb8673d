/**
 * `npm run token -- [--role viewer|operator|admin] [--subject <id>] [--lifetime <seconds>]`:
 * prints a client token for the gateway (README, "Authentication"), signed with
 * GATEWAY_JWT_SECRET (and GATEWAY_JWT_ISSUER / GATEWAY_JWT_AUDIENCE) when set, else with the
 * development secret `npm start` keeps in `<FLOWGRAPH_DATA_DIR>/secrets.json`. Defaults: role
 * operator, subject = the role's name, lifetime 86 400 s (one day; at most 365 days).
 *
 * Exit 1 on bad arguments, 2 when there is no secret to sign with (a gateway on
 * GATEWAY_JWKS_URL takes its tokens from its identity provider, not from here).
 */
import { Command, InvalidArgumentError } from 'commander';
import { clientTokenSigner, issueToken } from '../config/authSecrets.ts';
import { parseDatabaseConfig } from '../config/database.ts';
import { configOrExit } from '../config/env.ts';
import { isRole, ROLES, type Role } from '../federation/roles.ts';

const MAX_LIFETIME_SECONDS = 365 * 86_400;

const program = new Command('token')
  .description('print a client token for the gateway')
  .option('--role <role>', `one of ${ROLES.join(', ')}`, (value: string): Role => {
    if (!isRole(value)) throw new InvalidArgumentError(`expected one of ${ROLES.join(', ')}`);
    return value;
  }, 'operator' as Role)
  .option('--subject <id>', 'the token\'s sub (recorded as the actor of what it does); default: the role')
  .option('--lifetime <seconds>', `validity in seconds (1..${MAX_LIFETIME_SECONDS})`, (value: string) => {
    const seconds = Number(value);
    if (!Number.isInteger(seconds) || seconds < 1 || seconds > MAX_LIFETIME_SECONDS) throw new InvalidArgumentError(`expected an integer from 1 to ${MAX_LIFETIME_SECONDS}`);
    return seconds;
  }, 86_400)
  .parse();
const opts = program.opts<{ role: Role; subject?: string; lifetime: number }>();
const subject = opts.subject ?? opts.role;
if (!/^[^\p{C}]{1,200}$/u.test(subject)) program.error('--subject must be 1 to 200 printable characters');

const { secretsFile } = await configOrExit(() => parseDatabaseConfig(process.env, []));
const signer = await configOrExit(() => clientTokenSigner(process.env, secretsFile));
if (!signer) {
  console.error(`no secret to sign with: set GATEWAY_JWT_SECRET, or run \`npm start\` once (it stores a development secret in ${secretsFile})`);
  process.exit(2);
}
const token = await issueToken(signer.secret, { subject, role: opts.role }, { issuer: signer.issuer, audience: signer.audience, lifetimeSeconds: opts.lifetime });
process.stdout.on('error', () => {});
process.stdout.write(`${token}\n`);
