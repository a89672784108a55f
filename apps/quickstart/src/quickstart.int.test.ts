import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startQuickstart, type RunningQuickstart } from './quickstart.ts';

// The quickstart's processes, each started from its app's entry point, on the embedded default.
describe('quickstart (embedded default, separate processes)', () => {
  let dir: string;
  let q: RunningQuickstart;
  const lines: string[] = [];

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'quire-quickstart-'));
    q = await startQuickstart({ dataDir: dir, publishHttpPort: 0, publishGrpcPort: 0, consumeHttpPort: 0, consumeGrpcPort: 0, uiPort: 0, log: (l) => lines.push(l) });
  });
  afterAll(async () => {
    await q?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('runs the publish service as its own process and the printed example works', async () => {
    expect(q.processes.map((p) => p.name)).toEqual(['publish', 'consume']);
    expect(q.processes[0]?.child.pid).not.toBe(process.pid);
    const api = q.publishUrl;
    // Access control is on: without a token the services refuse; the admin token made at first start works.
    expect(q.adminToken).toMatch(/^quire_[0-9a-f]{16}_/);
    const auth = { authorization: `Bearer ${q.adminToken ?? ''}` };
    expect((await fetch(`${api}/v1/topics`)).status).toBe(401);
    expect((await fetch(`${q.consumeUrl}/v1/poll`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' })).status).toBe(401);
    const created = await fetch(`${api}/v1/topics`, {
      method: 'POST',
      headers: { ...auth, 'content-type': 'application/json' },
      body: JSON.stringify({ name: 'devices.supported', owner: 'me', description: 'supported devices' }),
    });
    expect(created.status).toBe(201);
    const published = await fetch(`${api}/v1/topics/devices.supported/versions`, {
      method: 'POST',
      headers: { ...auth, 'content-type': 'application/json' },
      body: JSON.stringify({ data: '["tv","phone"]', contentType: 'application/json', metadata: { source: 'quickstart' } }),
    });
    expect(published.status).toBe(201);
    const data = await fetch(`${api}/v1/topics/devices.supported/versions/1/data`, { headers: auth });
    expect(await data.text()).toBe('["tv","phone"]');
    // The consume process (another OS process on the same SQLite file) hands it to a poller.
    const poll = await fetch(`${q.consumeUrl}/v1/poll`, {
      method: 'POST',
      headers: { ...auth, 'content-type': 'application/json' },
      body: JSON.stringify({ identity: { application: 'demo', instance: 'i-1' }, subscriptions: [{ topic: 'devices.supported', knownVersion: 0 }], waitMs: 5000 }),
    });
    expect(poll.status).toBe(200);
    const body = (await poll.json()) as { updates: Array<{ topic: string; version: { version: number } }> };
    expect(body.updates.map((u) => [u.topic, Number(u.version.version)])).toEqual([['devices.supported', 1]]);
    // The consume service watches the publish service's change hints (ADR 0009), with its own viewer token.
    const metrics = await (await fetch(`${q.consumeUrl}/metrics`)).text();
    expect(metrics).toMatch(/^quire_change_hint_streams_connected\{[^}]*\} 1$/m);
    expect(metrics).toMatch(/^quire_change_hints_received_total\{[^}]*\} [1-9]/m);
  });

  it('serves the admin UI on one URL, with the API proxied under /api', async () => {
    const page = await fetch(`${q.uiUrl}/topics/devices.supported`);
    expect(page.status).toBe(200);
    expect(await page.text()).toContain('<div id="root">');
    // The proxy passes the refusal and the token through: the UI shows the one and sends the other.
    expect((await fetch(`${q.uiUrl}/api/v1/admin/topics`)).status).toBe(401);
    const topics = await fetch(`${q.uiUrl}/api/v1/admin/topics`, { headers: { authorization: `Bearer ${q.adminToken ?? ''}` } });
    expect(topics.status).toBe(200);
    expect(((await topics.json()) as { topics: { name: string; headVersion: number }[] }).topics).toEqual([
      expect.objectContaining({ name: 'devices.supported', headVersion: 1 }),
    ]);
  });

  it('stops its processes', async () => {
    await q.stop();
    for (const p of q.processes) expect(p.child.exitCode !== null || p.child.signalCode !== null).toBe(true);
  });

  it('creates the admin token only at the first start, and never prints it itself', async () => {
    const again = await startQuickstart({ dataDir: dir, publishHttpPort: 0, publishGrpcPort: 0, consumeHttpPort: 0, consumeGrpcPort: 0, log: (l) => lines.push(l) });
    try {
      expect(again.adminToken).toBeUndefined();
      const res = await fetch(`${again.publishUrl}/v1/tokens`, { headers: { authorization: `Bearer ${q.adminToken ?? ''}` } });
      expect(res.status).toBe(200);
      // The admin token and the consume service's change-hint token (viewer), each made once: a restart reuses both.
      const tokens = ((await res.json()) as { tokens: Array<{ name: string; role: string }> }).tokens;
      expect(tokens.map((t) => [t.name, t.role]).sort()).toEqual([['consume-hints', 'viewer'], ['quickstart-admin', 'admin']]);
    } finally {
      await again.stop();
    }
    expect(lines.join('\n')).not.toContain(q.adminToken ?? 'none');
  });
});
