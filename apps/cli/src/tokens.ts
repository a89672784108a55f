/**
 * `quire tokens create|list|revoke`: API token administration (admin token required when
 * the services run with QUIRE_AUTH=on); `quire tokens mint` prints a fresh token string
 * for a deployment's QUIRE_BOOTSTRAP_ADMIN_TOKEN without touching any store. `create`
 * prints the token string once, on stdout alone (so `TOKEN=$(quire tokens create …)` captures just it); the details go to stderr.
 */
import type { Command } from 'commander';
import { addKeyringKey, createTokenAdmin, type NewToken, type TokenInfo } from '@quire/client';
import { QuireError, tokenExpired } from '@quire/core';
import { parseDuration, parseInstant } from './args.ts';
import { formatTime, table } from './format.ts';

const ROLES = ['admin', 'operator', 'publisher', 'consumer', 'viewer'] as const;

interface TokenGlobals {
  publish: string;
  actor: string | undefined;
  token: string | undefined;
  json: boolean;
}

export interface TokenCommandDeps {
  globals(cmd: Command): TokenGlobals;
  out(text: string): Promise<void>;
  json(value: unknown): Promise<void>;
}

const collect = (value: string, previous: string[] | undefined): string[] => [...(previous ?? []), value];

function admin(g: TokenGlobals) {
  return createTokenAdmin({ endpoint: g.publish, ...(g.token === undefined ? {} : { token: g.token }), ...(g.actor === undefined ? {} : { actor: g.actor }) });
}

export function tokenTable(tokens: readonly TokenInfo[], now = Date.now()): string {
  return table(
    ['ID', 'NAME', 'ROLE', 'PREFIXES', 'APPLICATION', 'CREATED', 'STATE'],
    tokens.map((t) => [
      t.id,
      t.name,
      t.role,
      t.prefixes.length === 0 ? '(all topics)' : t.prefixes.map((p) => (p === '' ? '""' : p)).join(','),
      t.application ?? '-',
      `${formatTime(t.createdAt)} by ${t.createdBy}`,
      tokenState(t, now),
    ]),
  );
}

/** active (until …) / expired … / revoked … by … */
function tokenState(t: TokenInfo, now: number): string {
  if (t.revokedAt !== undefined) return `revoked ${formatTime(t.revokedAt)} by ${t.revokedBy ?? '?'}`;
  if (t.expiresAt === undefined) return 'active';
  return tokenExpired(t, now) ? `expired ${formatTime(t.expiresAt)}` : `active until ${formatTime(t.expiresAt)}`;
}

/** `--expires-in 90d` or `--expires-at <ISO time | epoch ms>` → ms since the epoch; undefined when neither. */
export function expiryOf(o: { expiresIn?: string; expiresAt?: string }, now = Date.now()): number | undefined {
  if (o.expiresIn !== undefined && o.expiresAt !== undefined) throw QuireError.invalid('expires-in', 'give --expires-in or --expires-at, not both');
  if (o.expiresIn !== undefined) return now + parseDuration(o.expiresIn, 'expires-in');
  if (o.expiresAt === undefined) return undefined;
  const at = parseInstant(o.expiresAt, 'expires-at');
  if (at === undefined) throw QuireError.invalid('expires-at', `"${o.expiresAt}" is not a time (an ISO date/time such as 2027-06-30T00:00:00Z, or epoch milliseconds)`);
  return at;
}

export function registerTokenCommands(program: Command, deps: TokenCommandDeps): void {
  const tokens = program.command('tokens').description('API tokens: create (shown once), list, revoke (admin); mint (offline, for QUIRE_BOOTSTRAP_ADMIN_TOKEN)');

  tokens
    .command('create <name>')
    .description('create a token; prints the token once on stdout')
    .requiredOption('--role <role>', `one of ${ROLES.join(', ')}`)
    .option('--prefix <prefix>', 'topic prefix the token covers (repeatable; "" = every topic); publisher and consumer need one', collect)
    .option('--application <name>', 'consumer tokens: the one application it may poll as')
    .option('--expires-in <duration>', 'the token stops working after this long (e.g. 12h, 90d); default: never')
    .option('--expires-at <time>', 'the token stops working at this time (ISO date/time or epoch ms); default: never')
    .action(async (name: string, o: { role: string; prefix?: string[]; application?: string; expiresIn?: string; expiresAt?: string }, cmd: Command) => {
      const g = deps.globals(cmd);
      if (!(ROLES as readonly string[]).includes(o.role)) throw QuireError.invalid('role', `must be one of ${ROLES.join(', ')}`);
      const expiresAt = expiryOf(o);
      const a = admin(g);
      try {
        const input: NewToken = {
          name,
          role: o.role as NewToken['role'],
          ...(o.prefix === undefined ? {} : { prefixes: o.prefix }),
          ...(o.application === undefined ? {} : { application: o.application }),
          ...(expiresAt === undefined ? {} : { expiresAt }),
        };
        const { token, tokenString } = await a.createToken(input);
        if (g.json) return deps.json({ token, tokenString });
        const until = token.expiresAt === undefined ? '' : `, valid until ${formatTime(token.expiresAt)}`;
        process.stderr.write(`quire: created token ${token.id} (${token.name}, ${token.role}${until}); it is shown once, store it now\n`);
        await deps.out(`${tokenString}\n`);
      } finally {
        a.close();
      }
    });

  tokens
    .command('mint')
    .description('print a fresh token string (admin token for QUIRE_BOOTSTRAP_ADMIN_TOKEN, registered by `quire migrate`); touches no store and no service')
    .action(async () => {
      // Loaded here only: service-kit brings the store adapters, heavy for the other commands.
      const { mintTokenString } = await import('@quire/service-kit');
      await deps.out(`${mintTokenString()}\n`);
    });

  tokens
    .command('list')
    .description('every token, revoked ones included (never the secrets)')
    .action(async (_o: unknown, cmd: Command) => {
      const g = deps.globals(cmd);
      const a = admin(g);
      try {
        const list = await a.listTokens();
        if (g.json) return deps.json(list);
        await deps.out(tokenTable(list));
      } finally {
        a.close();
      }
    });

  tokens
    .command('revoke <id>')
    .description('revoke a token: calls with it are refused from then on')
    .action(async (id: string, _o: unknown, cmd: Command) => {
      const g = deps.globals(cmd);
      const a = admin(g);
      try {
        const t = await a.revokeToken(id);
        if (g.json) return deps.json(t);
        await deps.out(`revoked ${t.id} (${t.name})\n`);
      } finally {
        a.close();
      }
    });
}

/** `quire keys add <keyId>`: a fresh 256-bit key in the keyring file (QUIRE_KEYRING / --keyring), mode 0600. */
export function registerKeyCommands(program: Command, deps: { globals(cmd: Command): { keyring: string | undefined }; out(text: string): Promise<void> }): void {
  const keys = program.command('keys').description('the local keyring of encrypted topics (key-encryption keys; never sent to Quire)');
  keys
    .command('add <keyId>')
    .description('add a fresh random 256-bit key to the keyring file')
    .action(async (keyId: string, _o: unknown, cmd: Command) => {
      const g = deps.globals(cmd);
      if (g.keyring === undefined) throw QuireError.invalid('keyring', 'give the keyring file with --keyring or QUIRE_KEYRING');
      await addKeyringKey(g.keyring, keyId);
      await deps.out(`added key ${keyId} to ${g.keyring}\n`);
    });
}
