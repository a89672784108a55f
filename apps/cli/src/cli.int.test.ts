// The `quire` CLI as its users run it: a separate process (node + tsx on src/main.ts)
// against real publish and consume services, started here from their composition roots
// on ports 0 and sharing one embedded SQLite store and blob directory in a temp dir.
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createPublisher, type Publisher } from '@quire/client';
import { createConsumeApp, loadConfig as loadConsumeConfig, type ConsumeApp } from '@quire/consume-service';
import { createPublishApp, loadConfig as loadPublishConfig, type PublishApp } from '@quire/publish-service';
import { runQuire, startQuire, type QuireResult } from './run-quire.ts';

const TOPIC = 'cli.test';
const MiB = 1024 * 1024;

let dir: string;
let publishApp: PublishApp;
let consumeApp: ConsumeApp;

const cliEnv = (): Record<string, string> => ({ QUIRE_PUBLISH: publishApp.grpcAddress, QUIRE_CONSUME: consumeApp.grpcAddress, QUIRE_ACTOR: 'cli-tests' });
/** Start `quire <args>` as its own process. */
const start = (args: string[], input?: string | Buffer) => startQuire(args, cliEnv(), input);
const quire = (args: string[], input?: string | Buffer): Promise<QuireResult> => runQuire(args, cliEnv(), input);

async function until(check: () => boolean, what: string, ms = 20_000): Promise<void> {
  const end = Date.now() + ms;
  while (!check()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** A port nothing listens on. */
async function closedPort(): Promise<number> {
  const srv = createServer();
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const port = (srv.address() as { port: number }).port;
  await new Promise<void>((r) => srv.close(() => r()));
  return port;
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'quire-cli-'));
  const env = { QUIRE_DATA_DIR: dir, QUIRE_LOG_LEVEL: 'silent' };
  publishApp = await createPublishApp(loadPublishConfig({ ...env, QUIRE_PUBLISH_HTTP_PORT: '0', QUIRE_PUBLISH_GRPC_PORT: '0' }));
  consumeApp = await createConsumeApp(loadConsumeConfig({ ...env, QUIRE_CONSUME_HTTP_PORT: '0', QUIRE_CONSUME_GRPC_PORT: '0' }));
});

afterAll(async () => {
  await consumeApp?.close();
  await publishApp?.close();
  if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
});

describe('quire CLI (separate process, real services)', () => {
  it('topics create, list, get; a second create exits 4', async () => {
    const created = await quire(['topics', 'create', TOPIC, '--description', 'cli tests', '--inline-threshold', '4MiB', '--keep-last', '50', '--max-age', '7d']);
    expect(created.stderr).toBe('');
    expect(created.code).toBe(0);
    expect(created.stdout).toMatch(/^name:\s+cli\.test$/m);
    expect(created.stdout).toMatch(/^retention:\s+keep last 50, max age 7d$/m);

    const [again, list, get] = await Promise.all([
      quire(['topics', 'create', TOPIC]),
      quire(['--json', 'topics', 'list', '--prefix', 'cli.']),
      quire(['topics', 'get', TOPIC, '--json']),
    ]);
    expect([again.code, again.stderr]).toEqual([4, expect.stringMatching(/^quire: .*cli\.test/)]);
    expect(list.code).toBe(0);
    expect((JSON.parse(list.stdout) as Array<{ name: string }>).map((t) => t.name)).toEqual([TOPIC]);
    expect(get.code).toBe(0);
    expect(JSON.parse(get.stdout)).toMatchObject({ name: TOPIC, owner: 'cli-tests', description: 'cli tests', inlineThresholdBytes: 4 * MiB, retention: { keepLast: 50, maxAgeMs: 7 * 86_400_000 }, headVersion: 0 });
  });

  it('publishes a string, a 3 MiB file (progress on stderr only) and stdin', async () => {
    const s = await quire(['publish', TOPIC, '--string', 'hello quire', '--meta', 'source=test', '--meta', 'build=7', '--content-type', 'text/plain', '--json']);
    expect(s.code).toBe(0);
    expect(JSON.parse(s.stdout)).toMatchObject({ topic: TOPIC, version: 1, size: 11, contentType: 'text/plain', publisher: 'cli-tests', metadata: { source: 'test', build: '7' }, pointer: { kind: 'inline' } });

    const big = randomBytes(3 * MiB);
    const file = join(dir, 'big.bin');
    writeFileSync(file, big);
    const f = await quire(['publish', TOPIC, file, '--progress', '--meta', 'source=file']);
    expect(f.code).toBe(0);
    // stdout: the result line only; stderr: the progress, ending at 100%.
    expect(f.stdout).toMatch(/^cli\.test v2 {2}sha256 [0-9a-f]{64} {2}3\.0 MiB \(3145728 B\) {2}inline\n$/);
    expect(f.stderr).toMatch(/publishing cli\.test \[#+\] 100% {2}3\.0 MiB \/ 3\.0 MiB {2}[\d.]+ \S+\/s\n$/);

    const piped = await quire(['publish', TOPIC, '-', '--json'], 'from stdin\n');
    expect(piped.code).toBe(0);
    expect(piped.stderr).toBe('');
    expect(JSON.parse(piped.stdout)).toMatchObject({ version: 3, size: 11 });
  });

  it('lists versions as a table, newest first', async () => {
    const r = await quire(['versions', TOPIC, '--limit', '10']);
    expect(r.code).toBe(0);
    const lines = r.stdout.trimEnd().split('\n');
    expect(lines[0]).toMatch(/^VERSION\s+CREATED\s+PUBLISHER\s+SIZE\s+TYPE\s+POINTER\s+METADATA$/);
    expect(lines.slice(1).map((l) => l.split(/\s+/)[0])).toEqual(['3', '2', '1']);
    expect(lines[3]).toMatch(/cli-tests\s+11 B\s+text\/plain\s+inline\s+source=test,build=7$/);
    expect(lines[2]).toMatch(/3\.0 MiB\s+application\/octet-stream\s+inline\s+source=file$/);
  });

  it('gets a version to a file and the latest for an identity to stdout, byte for byte', async () => {
    const out = join(dir, 'v2.bin');
    const [toFile, latest] = await Promise.all([quire(['get', TOPIC, '2', '-o', out]), quire(['get', TOPIC, '--as', 'application=checkout,region=eu-west-1'])]);
    expect(toFile.code).toBe(0);
    expect(readFileSync(out).equals(readFileSync(join(dir, 'big.bin')))).toBe(true);
    expect(toFile.stdout).toMatch(/^wrote .*v2\.bin: cli\.test v2 /);
    expect(latest.code).toBe(0);
    expect(latest.stdout).toBe('from stdin\n');
  });

  it('watch --once prints a version published after it started, then exits 0', async () => {
    const w = start(['watch', TOPIC, '--as', 'application=checkout,region=eu-west-1', '--once']);
    await until(() => w.stderrText().includes('quire: watching cli.test'), 'the watch to start');
    expect(w.stderrText()).toMatch(/current version v3/);
    const p = await quire(['publish', TOPIC, '--string', 'four', '--meta', 'n=4']);
    expect(p.code).toBe(0);
    const r = await w.result;
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^v4 {2}\d{4}-\d\d-\d\d \d\d:\d\d:\d\dZ {2}4 B {2}n=4\n$/);
  });

  it('exits 3 for an unknown topic, 2 for bad metadata, 5 when the service is unreachable', async () => {
    const port = await closedPort();
    const [unknown, badMeta, down] = await Promise.all([
      quire(['versions', 'no.such.topic']),
      quire(['publish', TOPIC, '--string', 'x', '--meta', 'novalue']),
      quire(['--publish', `127.0.0.1:${port}`, 'topics', 'get', TOPIC]),
    ]);
    expect([unknown.code, unknown.stderr]).toEqual([3, expect.stringMatching(/^quire: .*no\.such\.topic/)]);
    expect([badMeta.code, badMeta.stderr]).toEqual([2, 'quire: meta: "novalue" is not key=value (field: meta)\n']);
    expect(down.code).toBe(5);
    expect(down.stderr).toMatch(/^quire: /);
    for (const r of [unknown, badMeta, down]) expect(r.stdoutBytes.byteLength).toBe(0);
  });
});

describe('quire CLI: release, pins, rollback, rollouts, audit', () => {
  const OPS = 'cli.ops';
  const EU = 'application=checkout,region=eu-west-1';
  let pub: Publisher;

  beforeAll(async () => {
    // Set-up in process through the SDK (no spawns): v1, v2 global; v3 only to cluster=staging.
    pub = createPublisher({ endpoint: publishApp.grpcAddress, actor: 'cli-tests' });
    await pub.createTopic({ name: OPS, description: 'operator commands' });
    await pub.publish(OPS, { data: 'one' });
    await pub.publish(OPS, { data: 'two' });
    await pub.publish(OPS, { data: 'three', scopes: [{ cluster: 'staging' }] });
  });

  afterAll(() => pub?.close());

  it('release to a scope, pin (get --as follows it), rollback, unpin, pins --history; bad input exits 3 / 2', async () => {
    const released = await quire(['release', OPS, '3', '--scope', 'region=eu-west-1', '--reason', 'eu first']);
    expect([released.code, released.stderr, released.stdout]).toEqual([0, '', 'released cli.ops v3 to region=eu-west-1\n']);

    const [eu3, missing, noReason] = await Promise.all([
      quire(['get', OPS, '--as', EU]),
      quire(['pin', OPS, '99', '--reason', 'no such version']),
      quire(['pin', OPS, '2']),
    ]);
    expect([eu3.code, eu3.stdout]).toEqual([0, 'three']);
    expect([missing.code, missing.stderr]).toEqual([3, expect.stringMatching(/^quire: .*99.*\(field: version\)\n$/)]);
    expect([noReason.code, noReason.stderr]).toEqual([2, 'quire: reason: is required (say why you pin: --reason "…") (field: reason)\n']);
    for (const r of [missing, noReason]) expect(r.stdoutBytes.byteLength).toBe(0);

    const pinned = await quire(['pin', OPS, '2', '--reason', 'bad rows in 3', '--scope', 'region=eu-west-1', '--json']);
    expect(pinned.code).toBe(0);
    expect(JSON.parse(pinned.stdout)).toMatchObject({ version: 2, scope: { region: 'eu-west-1' }, reason: 'bad rows in 3', pinnedBy: 'cli-tests' });
    const eu2 = await quire(['get', OPS, '--as', EU]);
    expect([eu2.code, eu2.stdout]).toEqual([0, 'two']);

    // Global: v3 (the newest any consumer gets) is current, v2 the last fully rolled out before it.
    const rolled = await quire(['rollback', OPS, '--reason', 'v3 breaks parsing']);
    expect([rolled.code, rolled.stderr, rolled.stdout]).toEqual([0, '', 'rolled back cli.ops in global: pinned v2 (from v3)\n']);

    const unpinned = await quire(['unpin', OPS, '--scope', 'region=eu-west-1', '--reason', 'fixed']);
    expect([unpinned.code, unpinned.stdout]).toEqual([0, 'unpinned cli.ops in region=eu-west-1 (was pinned to v2)\n']);

    const pins = await quire(['pins', OPS, '--history']);
    expect(pins.code).toBe(0);
    const lines = pins.stdout.trimEnd().split('\n');
    expect(lines[0]).toMatch(/^SCOPE\s+VERSION\s+PINNED\s+BY\s+ENDED\s+REASON$/);
    expect(lines.slice(1).sort()).toEqual([
      expect.stringMatching(/^global\s+v2\s+\S+ \S+\s+cli-tests\s+active\s+v3 breaks parsing$/),
      expect.stringMatching(/^region=eu-west-1\s+v2\s+\S+ \S+\s+cli-tests\s+\S+ \S+ by cli-tests\s+bad rows in 3$/),
    ]);
  });

  it('rollout start / status / advance with a two-stage plan, and audit lists every action', async () => {
    await pub.publish(OPS, { data: 'four', scopes: [{ cluster: 'nowhere' }] });
    const plan = join(dir, 'plan.json');
    writeFileSync(plan, JSON.stringify({ stages: [{ name: 'canary', scope: { cluster: 'canary' }, bake: '0s' }, { name: 'all', scope: {}, bake: '1h' }] }));

    const started = await quire(['rollout', 'start', OPS, '4', '--plan', plan, '--json']);
    expect([started.code, started.stderr]).toEqual([0, '']);
    const run = JSON.parse(started.stdout) as { runId: string; status: string; stageIndex: number; nextStageAt: number };
    expect(run).toMatchObject({ status: 'running', stageIndex: 0, version: 4, startedBy: 'cli-tests' });
    expect(run.nextStageAt).toBeGreaterThan(Date.now() + 3_500_000);

    const status = await quire(['rollout', 'status', OPS]);
    expect(status.code).toBe(0);
    expect(status.stdout).toContain(`run ${run.runId}: cli.ops v4  running  stage 1/2\n`);
    expect(status.stdout).toMatch(/^next stage 2 in (1h0m|59m\d\ds) \(/m);
    expect(status.stdout).toMatch(/^1\s+canary\s+cluster=canary\s+0s\s+released$/m);
    expect(status.stdout).toMatch(/^2\s+all\s+global\s+1h\s+next in (1h0m|59m\d\ds)$/m);

    const advanced = await quire(['rollout', 'advance', OPS, run.runId, '--reason', 'canary looks good']);
    expect([advanced.code, advanced.stderr]).toEqual([0, '']);
    expect(advanced.stdout).toMatch(/stage 2\/2\n/);
    expect(advanced.stdout).toMatch(/^2\s+all\s+global\s+1h\s+released$/m);

    const [audit, rollbacks] = await Promise.all([
      quire(['audit', '--topic', OPS, '--json']),
      quire(['audit', '--topic', OPS, '--action', 'rollback', '--actor', 'cli-tests', '--since', '1h']),
    ]);
    expect(audit.code).toBe(0);
    const actions = (JSON.parse(audit.stdout) as Array<{ action: string; actor: string }>).map((e) => e.action);
    for (const a of ['release', 'pin', 'rollback', 'unpin', 'rollout.start', 'rollout.advance']) expect(actions).toContain(a);
    expect(actions.at(-1)).toBe('topic.create'); // newest first
    expect(rollbacks.code).toBe(0);
    const rows = rollbacks.stdout.trimEnd().split('\n');
    expect(rows[0]).toMatch(/^TIME\s+ACTOR\s+ACTION\s+TOPIC\s+REASON\s+DETAILS$/);
    expect(rows.slice(1)).toEqual([expect.stringMatching(/cli-tests\s+rollback\s+cli\.ops\s+v3 breaks parsing\s+from=3 version=2 /)]);
  });
});
