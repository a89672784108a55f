// The entry point as a separate process: configured only through the environment
// (embedded store in a temp dir), started, used over REST, stopped with SIGTERM.
import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';

const APP_DIR = fileURLToPath(new URL('..', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'quire-main-'));
const children: ChildProcess[] = [];

afterAll(() => {
  for (const c of children) if (c.exitCode === null) c.kill('SIGKILL');
  rmSync(dir, { recursive: true, force: true });
});

/** A port that was free a moment ago (the child cannot report back a port 0). */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr !== null ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

function start(env: Record<string, string>): { child: ChildProcess; output: () => string; exited: Promise<number | null> } {
  const clean = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('QUIRE_')));
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/main.ts'], { cwd: APP_DIR, env: { ...clean, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  children.push(child);
  let out = '';
  child.stdout?.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  return { child, output: () => out, exited };
}

async function waitFor(output: () => string, text: string, exited: Promise<number | null>, ms = 30_000): Promise<void> {
  const deadline = Date.now() + ms;
  let done = false;
  void exited.then(() => (done = true));
  while (!output().includes(text)) {
    if (done) throw new Error(`process exited before printing "${text}":\n${output()}`);
    if (Date.now() > deadline) throw new Error(`timed out waiting for "${text}":\n${output()}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe('publish-service entry point', () => {
  it('starts from the environment, serves REST, and stops on SIGTERM', async () => {
    const [httpPort, grpcPort] = [await freePort(), await freePort()];
    const p = start({
      QUIRE_DATA_DIR: dir,
      QUIRE_PUBLISH_HTTP_PORT: String(httpPort),
      QUIRE_PUBLISH_GRPC_PORT: String(grpcPort),
      QUIRE_LOG_LEVEL: 'warn',
    });
    await waitFor(p.output, 'listening', p.exited);
    expect(p.output()).toContain(`rest http://127.0.0.1:${httpPort} grpc 127.0.0.1:${grpcPort}`);
    const base = `http://127.0.0.1:${httpPort}`;
    const json = { 'content-type': 'application/json', 'x-quire-actor': 'ci' };
    expect((await fetch(`${base}/v1/topics`, { method: 'POST', headers: json, body: JSON.stringify({ name: 'main.topic' }) })).status).toBe(201);
    const pub = await fetch(`${base}/v1/topics/main.topic/versions`, { method: 'POST', headers: json, body: JSON.stringify({ data: 'hi' }) });
    expect(pub.status).toBe(201);
    expect(((await pub.json()) as { version: { version: number } }).version.version).toBe(1);
    expect(await (await fetch(`${base}/v1/topics/main.topic/versions/1/data`)).text()).toBe('hi');
    // Above the inline threshold: streamed into the local blob directory and back.
    const big = randomBytes(2 * 1024 * 1024);
    const put = await fetch(`${base}/v1/topics/main.topic/versions`, { method: 'PUT', headers: { 'content-type': 'application/octet-stream' }, body: big });
    expect(put.status).toBe(201);
    expect(((await put.json()) as { version: { pointer: { kind: string } } }).version.pointer.kind).toBe('s3');
    const back = Buffer.from(await (await fetch(`${base}/v1/topics/main.topic/versions/2/data`)).arrayBuffer());
    expect(back.equals(big)).toBe(true);

    p.child.kill('SIGTERM');
    expect(await p.exited).toBe(0);
  });

  it('refuses to start on an unknown or malformed variable, naming it', async () => {
    const bad = start({ QUIRE_DATA_DIR: dir, QUIRE_PUBLISH_HTTP_PORT: 'eighty' });
    expect(await bad.exited).toBe(2);
    expect(bad.output()).toContain('QUIRE_PUBLISH_HTTP_PORT');
    const unknown = start({ QUIRE_DATA_DIR: dir, QUIRE_PUBLSH_GRPC_PORT: '1' });
    expect(await unknown.exited).toBe(2);
    expect(unknown.output()).toContain('QUIRE_PUBLSH_GRPC_PORT');
  });
});
