// `quire tokens` and the token on every CLI call, as users run it: the CLI as its own
// process against real publish and consume services with access control on (embedded
// store in a temp dir). The token comes from QUIRE_TOKEN or --token.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createConsumeApp, loadConfig as loadConsumeConfig, type ConsumeApp } from '@quire/consume-service';
import { bootstrapAdminToken, createPublishApp, createStores, loadConfig as loadPublishConfig, type PublishApp } from '@quire/publish-service';
import { runQuire, type QuireResult } from './run-quire.ts';

let dir: string;
let publishApp: PublishApp;
let consumeApp: ConsumeApp;
let admin: string;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'quire-cli-tokens-'));
  const env = { QUIRE_DATA_DIR: dir, QUIRE_LOG_LEVEL: 'silent', QUIRE_AUTH: 'on', QUIRE_AUTH_CACHE_MS: '0' };
  publishApp = await createPublishApp(loadPublishConfig({ ...env, QUIRE_PUBLISH_HTTP_PORT: '0', QUIRE_PUBLISH_GRPC_PORT: '0' }));
  consumeApp = await createConsumeApp(loadConsumeConfig({ ...env, QUIRE_CONSUME_HTTP_PORT: '0', QUIRE_CONSUME_GRPC_PORT: '0' }));
  const stores = await createStores(loadPublishConfig(env));
  admin = (await bootstrapAdminToken(stores.store)) ?? '';
  await stores.close();
});

afterAll(async () => {
  await consumeApp?.close();
  await publishApp?.close();
  if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
});

function quire(args: string[], token?: string, input?: string, extraEnv: Record<string, string> = {}): Promise<QuireResult> {
  const env: Record<string, string> = { QUIRE_PUBLISH: publishApp.grpcAddress, QUIRE_CONSUME: consumeApp.grpcAddress, QUIRE_ACTOR: 'someone-else' };
  if (token !== undefined) env.QUIRE_TOKEN = token;
  return runQuire(args, { ...env, ...extraEnv }, input);
}

describe('quire tokens (QUIRE_AUTH=on)', () => {
  it('create prints the token once on stdout; it works for its role only; list shows no secret; revoke ends it', async () => {
    expect(admin).toMatch(/^quire_/);
    const created = await quire(['tokens', 'create', 'cli-publisher', '--role', 'publisher', '--prefix', 'cli.'], admin);
    expect(created.code, created.stderr).toBe(0);
    const pub = created.stdout.trim();
    expect(pub).toMatch(/^quire_[0-9a-f]{16}_[A-Za-z0-9_-]{43}$/);
    expect(created.stderr).toMatch(/shown once/);

    // Without a token: refused (exit 6, UNAUTHENTICATED); the admin creates the topic.
    const anon = await quire(['topics', 'create', 'cli.auth']);
    expect([anon.code, anon.stderr]).toEqual([6, expect.stringMatching(/token/)]);
    expect((await quire(['topics', 'create', 'cli.auth'], admin)).code).toBe(0);

    // The publisher publishes (audited under the token's name, not QUIRE_ACTOR), but cannot create topics or pin.
    const published = await quire(['publish', 'cli.auth', '--string', 'hello', '--json'], pub);
    expect(published.code, published.stderr).toBe(0);
    expect(JSON.parse(published.stdout)).toMatchObject({ version: 1, publisher: 'cli-publisher' });
    expect((await quire(['topics', 'create', 'cli.other'], pub)).code).toBe(6);
    expect((await quire(['pin', 'cli.auth', '1', '--reason', 'x'], pub)).code).toBe(6);
    // --token takes precedence over nothing in the environment.
    expect((await quire(['--token', admin, 'get', 'cli.auth', '1'])).stdout).toBe('hello');

    const list = await quire(['tokens', 'list', '--json'], admin);
    expect(list.code).toBe(0);
    const tokens = JSON.parse(list.stdout) as Array<{ id: string; name: string; role: string; prefixes: string[] }>;
    expect(tokens.map((t) => [t.name, t.role])).toEqual(expect.arrayContaining([['bootstrap-admin', 'admin'], ['cli-publisher', 'publisher']]));
    expect(list.stdout).not.toContain(pub.slice(-43));
    expect((await quire(['tokens', 'list'], pub)).code).toBe(6);

    const id = pub.split('_')[1]!;
    const revoked = await quire(['tokens', 'revoke', id], admin);
    expect([revoked.code, revoked.stdout]).toEqual([0, `revoked ${id} (cli-publisher)\n`]);
    const after = await quire(['publish', 'cli.auth', '--string', 'again'], pub);
    expect([after.code, after.stderr]).toEqual([6, expect.stringMatching(/revoked token/)]);
    const table = await quire(['tokens', 'list'], admin);
    expect(table.stdout).toMatch(/cli-publisher\s+publisher\s+cli\..*revoked/);
  });

  it('create --expires-in / --expires-at: the token is listed with its expiry and refused once it has passed', async () => {
    const created = await quire(['tokens', 'create', 'cli-expiring', '--role', 'viewer', '--prefix', 'cli.', '--expires-in', '90d', '--json'], admin);
    expect(created.code, created.stderr).toBe(0);
    const { token } = JSON.parse(created.stdout) as { token: { id: string; expiresAt: number } };
    const day = 24 * 3600 * 1000;
    expect(Math.abs(token.expiresAt - (Date.now() + 90 * day))).toBeLessThan(120_000);
    const table = await quire(['tokens', 'list'], admin);
    expect(table.stdout).toMatch(/cli-expiring\s+viewer\s+cli\..*active until/);
    // Bad input: named, exit 2, nothing created.
    const both = await quire(['tokens', 'create', 'x', '--role', 'viewer', '--expires-in', '1d', '--expires-at', '2030-01-01'], admin);
    expect([both.code, both.stderr]).toEqual([2, expect.stringMatching(/expires-in/)]);
    const past = await quire(['tokens', 'create', 'x', '--role', 'viewer', '--expires-at', '2020-01-01T00:00:00Z'], admin);
    expect([past.code, past.stderr]).toEqual([2, expect.stringMatching(/expiresAt.*future/)]);
    const garbage = await quire(['tokens', 'create', 'x', '--role', 'viewer', '--expires-in', 'soon'], admin);
    expect([garbage.code, garbage.stderr]).toEqual([2, expect.stringMatching(/expires-in/)]);
    expect((JSON.parse((await quire(['tokens', 'list', '--json'], admin)).stdout) as Array<{ name: string }>).filter((t) => t.name === 'x')).toEqual([]);
    // A short one: works, then refused as expired (exit 6), shown as expired.
    const short = await quire(['tokens', 'create', 'cli-short', '--role', 'viewer', '--prefix', 'cli.', '--expires-in', '10s', '--json'], admin);
    expect(short.code, short.stderr).toBe(0);
    const { token: shortToken, tokenString: viewer } = JSON.parse(short.stdout) as { token: { expiresAt: number }; tokenString: string };
    expect((await quire(['topics', 'list'], viewer)).code).toBe(0);
    await new Promise((r) => setTimeout(r, Math.max(0, shortToken.expiresAt + 100 - Date.now())));
    const late = await quire(['topics', 'list'], viewer);
    expect([late.code, late.stderr]).toEqual([6, expect.stringMatching(/expired token/)]);
    expect((await quire(['tokens', 'list'], admin)).stdout).toMatch(/cli-short\s+viewer\s+cli\..*expired/);
  });

  it('keys add, topics create --encrypt, publish and get with QUIRE_KEYRING; without it get names the key', async () => {
    const ring = { QUIRE_KEYRING: join(dir, 'keys', 'ring.json') };
    expect((await quire(['keys', 'add', 'cli-k1'], admin, undefined, ring)).stdout).toMatch(/added key cli-k1/);
    const created = await quire(['topics', 'create', 'cli.enc', '--encrypt', 'cli-k1'], admin);
    expect(created.stdout).toMatch(/^encryption:\s+aes-256-gcm, key cli-k1$/m);
    // `--json topics list` maps the topic like the SDK does: its encryption settings included.
    const listed = await quire(['--json', 'topics', 'list', '--prefix', 'cli.enc'], admin);
    expect(listed.code, listed.stderr).toBe(0);
    expect(JSON.parse(listed.stdout)).toEqual([expect.objectContaining({ name: 'cli.enc', encryption: { algorithm: 'aes-256-gcm', keyId: 'cli-k1' } })]);
    expect((await quire(['publish', 'cli.enc', '--string', 'the secret'], admin, undefined, ring)).code).toBe(0);
    expect((await quire(['get', 'cli.enc', '1'], admin, undefined, ring)).stdout).toBe('the secret');
    const without = await quire(['get', 'cli.enc', '1'], admin);
    expect(without.code).not.toBe(0);
    expect(without.stderr).toMatch(/encrypted with key "cli-k1"/);
    expect(without.stdout).toBe('');
  });
});
