// The first admin token of a deployment, as deploy/ makes it: `quire tokens mint` prints a
// token string (no store touched), `quire migrate` with QUIRE_BOOTSTRAP_ADMIN_TOKEN registers
// it (its hash only) in the real Cassandra, a rerun changes nothing, and the token then
// works as an admin against a publish service running with QUIRE_AUTH=on.
import cassandra from 'cassandra-driver';
import { afterAll, describe, expect, inject, it } from 'vitest';
import { parseTokenString } from '@quire/core';
import { hashSecret } from '@quire/service-kit';
import { startQuireProcess, quireTestStores, type QuireProcess } from '@quire/test-servers';
import { runQuire, type QuireResult } from './run-quire.ts';

const servers = inject('quireServers');
const server = servers.cassandra;
const testStores = quireTestStores(servers, 'bootstrap');
const keyspace = testStores.keyspace;
const env = {
  ...testStores.env,
  QUIRE_AUTH: 'on',
};

let publish: QuireProcess | undefined;
afterAll(async () => {
  await publish?.stop();
  const client = new cassandra.Client({ contactPoints: server.contactPoints, localDataCenter: server.localDataCenter, protocolOptions: { port: server.port } });
  await client.execute(`DROP KEYSPACE IF EXISTS ${keyspace}`).finally(() => client.shutdown());
});

function quire(args: string[], extra: Record<string, string> = {}): Promise<QuireResult> {
  return runQuire(args, { ...env, ...extra });
}

async function tokenRows(): Promise<Array<{ id: string; data: string }>> {
  const client = new cassandra.Client({ contactPoints: server.contactPoints, localDataCenter: server.localDataCenter, protocolOptions: { port: server.port } });
  try {
    return (await client.execute(`SELECT id, data FROM ${keyspace}.api_tokens`)).rows.map((r) => ({ id: String(r['id']), data: String(r['data']) }));
  } finally {
    await client.shutdown();
  }
}

describe('the bootstrap admin token (QUIRE_BOOTSTRAP_ADMIN_TOKEN)', () => {
  it('is minted offline, registered once by quire migrate, and works as admin against a service with QUIRE_AUTH=on', async () => {
    const minted = await quire(['tokens', 'mint']);
    expect(minted.code, minted.stderr).toBe(0);
    const token = minted.stdout.trim();
    expect(minted.stdout).toBe(`${token}\n`);
    const parsed = parseTokenString(token);
    expect(parsed, `a well-formed token: ${token}`).toBeDefined();
    const { id, secret } = parsed ?? { id: '', secret: '' };

    const first = await quire(['migrate', '--json'], { QUIRE_BOOTSTRAP_ADMIN_TOKEN: token });
    expect(first.code, first.stderr).toBe(0);
    expect((JSON.parse(first.stdout) as { bootstrapAdminToken?: unknown }).bootstrapAdminToken).toEqual({ id, created: true });
    expect(first.stderr).toContain(`bootstrap admin token ${id} registered`);
    expect(first.stderr + first.stdout).not.toContain(secret);

    // Only the hash is stored, under the token's id.
    const rows = await tokenRows();
    expect(rows.map((r) => r.id)).toEqual([id]);
    expect(rows[0]?.data).toContain(hashSecret(secret));
    expect(rows[0]?.data).not.toContain(secret);
    expect(JSON.parse(rows[0]?.data ?? '{}')).toMatchObject({ role: 'admin', name: 'bootstrap-admin', createdBy: 'quire migrate' });

    // A rerun (the next release's migration job) neither fails nor duplicates.
    const second = await quire(['migrate', '--json'], { QUIRE_BOOTSTRAP_ADMIN_TOKEN: token });
    expect(second.code, second.stderr).toBe(0);
    expect((JSON.parse(second.stdout) as { bootstrapAdminToken?: unknown }).bootstrapAdminToken).toEqual({ id, created: false });
    expect(second.stderr).toContain(`bootstrap admin token ${id} already registered`);
    expect(await tokenRows()).toEqual(rows);

    publish = await startQuireProcess('publish-service', { ...env, QUIRE_PUBLISH_HTTP_PORT: '0', QUIRE_PUBLISH_GRPC_PORT: '0' });
    const createTopic = (bearer: string, name: string): Promise<Response> =>
      fetch(`${publish?.httpUrl}/v1/topics`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${bearer}` },
        body: JSON.stringify({ name, owner: 'platform' }),
      });
    const ok = await createTopic(token, 'bootstrap.first');
    expect(ok.status, await ok.clone().text()).toBe(201);
    // Another well-formed token, never registered, and the right id with a wrong secret: 401.
    const stranger = (await quire(['tokens', 'mint'])).stdout.trim();
    expect((await createTopic(stranger, 'bootstrap.stranger')).status).toBe(401);
    expect((await createTopic(`quire_${id}_${'A'.repeat(43)}`, 'bootstrap.wrong-secret')).status).toBe(401);
    // Rotation (deploy/README.md): the bootstrap token makes another admin token, which revokes it.
    const auth = (bearer: string) => ({ 'content-type': 'application/json', authorization: `Bearer ${bearer}` });
    const created = await fetch(`${publish.httpUrl}/v1/tokens`, { method: 'POST', headers: auth(token), body: JSON.stringify({ name: 'ops-admin', role: 'admin' }) });
    expect(created.status, await created.clone().text()).toBe(201);
    const next = ((await created.json()) as { tokenString: string }).tokenString;
    const revoked = await fetch(`${publish.httpUrl}/v1/tokens/${id}/revoke`, { method: 'POST', headers: { authorization: `Bearer ${next}` } });
    expect(revoked.status, await revoked.clone().text()).toBe(200);
    // The revocation reaches the service's token cache (QUIRE_AUTH_CACHE_MS, 2 s by default): poll, no timing asserted.
    let status = 0;
    for (let i = 0; i < 100 && status !== 401; i++) {
      status = (await createTopic(token, `bootstrap.after-revoke-${i}`)).status;
      if (status !== 401) await new Promise((r) => setTimeout(r, 100));
    }
    expect(status).toBe(401);
    expect((await createTopic(next, 'bootstrap.next')).status).toBe(201);
    // The migration job runs again with the old Secret: the revoked token stays revoked.
    const third = await quire(['migrate', '--json'], { QUIRE_BOOTSTRAP_ADMIN_TOKEN: token });
    expect(third.code, third.stderr).toBe(0);
    expect(third.stderr).toContain(`bootstrap admin token ${id} already registered (revoked)`);
    expect((await createTopic(token, 'bootstrap.after-rerun')).status).toBe(401);
  });

  it('stops quire migrate with exit 2 on a malformed value, naming the variable and not echoing the value', async () => {
    const bad = 'quire_not-a-token_s3cr3t-value';
    const r = await quire(['migrate'], { QUIRE_BOOTSTRAP_ADMIN_TOKEN: bad });
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('QUIRE_BOOTSTRAP_ADMIN_TOKEN');
    expect(r.stderr).toContain('is not a Quire token');
    expect(r.stderr).not.toContain('s3cr3t-value');
    expect(r.stdout).toBe('');
  });
});
