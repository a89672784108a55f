// QUIRE_CONFIG_FILE at the process level: the services' real entry points (apps/<app>/src/main.ts,
// as separate processes) start from a file, the environment overriding it, and a wrong value or
// an unknown key in the file stops start-up with exit 2 and a message naming the key and the file.
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { startQuireProcess } from '@quire/test-servers';

const REPO = fileURLToPath(new URL('../../..', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'quire-config-file-proc-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Run an app's entry point until it exits (a start-up refused); its status and output. */
function runUntilExit(app: string, env: Record<string, string>): Promise<{ code: number | null; output: string }> {
  const base = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('QUIRE_')));
  const child = spawn(process.execPath, ['--import', 'tsx', join(REPO, 'apps', app, 'src/main.ts')], { cwd: REPO, env: { ...base, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout.on('data', (b: Buffer) => (output += b.toString('utf8')));
  child.stderr.on('data', (b: Buffer) => (output += b.toString('utf8')));
  // A start that was not refused would listen forever: stop it so the assertion below fails clearly.
  const guard = setTimeout(() => child.kill('SIGKILL'), 60_000);
  return new Promise((res, rej) => {
    child.on('error', rej);
    child.on('close', (code) => {
      clearTimeout(guard);
      res({ code, output });
    });
  });
}

function file(name: string, text: string): string {
  const path = join(dir, name);
  writeFileSync(path, text);
  return path;
}

describe('QUIRE_CONFIG_FILE (service processes)', () => {
  it('the publish service starts from a YAML file; the environment overrides it', async () => {
    const path = file(
      'publish.yaml',
      [`QUIRE_DATA_DIR: ${JSON.stringify(join(dir, 'data'))}`, 'QUIRE_PUBLISH_HTTP_PORT: eighty # wrong, but overridden by the environment', 'QUIRE_PUBLISH_GRPC_PORT: 0', 'QUIRE_LOG_LEVEL: warn', 'QUIRE_CONSUME_HTTP_PORT: 7081', ''].join('\n'),
    );
    const p = await startQuireProcess('publish-service', { QUIRE_CONFIG_FILE: path, QUIRE_PUBLISH_HTTP_PORT: '0' });
    try {
      const res = await fetch(`${p.httpUrl}/v1/topics`);
      expect(res.status).toBe(200);
    } finally {
      expect(await p.stop()).toBe(0);
    }
  });

  it('a wrong value in the file stops the consume service with exit 2, naming the key, the value and the file', async () => {
    const path = file('consume.json', JSON.stringify({ QUIRE_DATA_DIR: join(dir, 'data'), QUIRE_CONSUME_HTTP_PORT: 0, QUIRE_CONSUME_GRPC_PORT: 0, QUIRE_CHANGE_POLL_MS: 1 }));
    const r = await runUntilExit('consume-service', { QUIRE_CONFIG_FILE: path });
    expect(r.code).toBe(2);
    expect(r.output).toMatch(/quire consume-service: bad configuration: QUIRE_CHANGE_POLL_MS: .*\(got "1" in .*consume\.json\)/);
    expect(r.output).not.toContain('listening');
  });

  it('an unknown key in the file stops the publish service with exit 2, suggesting the known name', async () => {
    const path = file('typo.yaml', `QUIRE_DATA_DIR: ${JSON.stringify(join(dir, 'data'))}\nQUIRE_PUBLISH_GRCP_PORT: 0\n`);
    const r = await runUntilExit('publish-service', { QUIRE_CONFIG_FILE: path });
    expect(r.code).toBe(2);
    expect(r.output).toContain('QUIRE_PUBLISH_GRCP_PORT: unknown key; did you mean QUIRE_PUBLISH_GRPC_PORT?');
    expect(r.output).toContain(`(in ${path})`);
  });

  it('a missing file stops start-up naming QUIRE_CONFIG_FILE and the path', async () => {
    const r = await runUntilExit('publish-service', { QUIRE_CONFIG_FILE: join(dir, 'absent.yaml') });
    expect(r.code).toBe(2);
    expect(r.output).toMatch(/QUIRE_CONFIG_FILE: cannot read .*absent\.yaml \(ENOENT\)/);
  });
});
