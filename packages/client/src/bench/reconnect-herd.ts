/**
 * How spread out consumers come back when their only consume instance restarts (the
 * thundering herd the jittered reconnect backoff is there to prevent).
 *
 *   pnpm tsx packages/client/src/bench/reconnect-herd.ts [consumers=300] [downMs=5000]
 *
 * Starts the publish and consume services as processes on the embedded store, N long-polling
 * consumers in this process, kills the consume instance, waits `downMs`, restarts it on the
 * same port, and prints when each consumer's first poll was answered again (from the
 * restarted instance's "listening" line): first, median, p90, last, and the most first polls
 * answered in any 100 ms window. Figures depend on the machine; run it where you compare.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startQuireProcess, type QuireProcess } from '@quire/test-servers';
import { createConsumer, createPublisher, type Consumer } from '../index.ts';

const n = Number(process.argv[2] ?? 300);
const downMs = Number(process.argv[3] ?? 5000);

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as { port: number };
      srv.close(() => resolve(port));
    });
  });
}

async function until(fn: () => boolean, what: string, timeoutMs = 120_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!fn()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

const quantile = (sorted: number[], q: number): number => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] as number;

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'quire-herd-'));
  const env = { QUIRE_DATA_DIR: dir, QUIRE_LOG_LEVEL: 'warn' };
  const port = await freePort();
  const procs: QuireProcess[] = [];
  const consumers: Consumer[] = [];
  try {
    const publish = await startQuireProcess('publish-service', { ...env, QUIRE_PUBLISH_HTTP_PORT: '0', QUIRE_PUBLISH_GRPC_PORT: '0' });
    procs.push(publish);
    let consume = await startQuireProcess('consume-service', { ...env, QUIRE_CONSUME_HTTP_PORT: '0', QUIRE_CONSUME_GRPC_PORT: String(port) });
    procs.push(consume);
    const pub = createPublisher({ endpoint: publish.grpcAddress, actor: 'herd' });
    await pub.createTopic({ name: 'herd.topic', owner: 'bench' });
    await pub.publish('herd.topic', { data: 'v1' });
    pub.close();

    const failed = new Set<number>();
    const back = new Map<number, number>();
    for (let i = 0; i < n; i++) {
      const c = createConsumer({ endpoints: [`127.0.0.1:${port}`], identity: { application: 'herd', instance: `herd-${i}` }, longPoll: { waitMs: 20_000 } });
      c.on('error', () => failed.add(i));
      c.on('recovered', () => back.set(i, Date.now()));
      c.subscribe('herd.topic');
      consumers.push(c);
    }
    await Promise.all(consumers.map((c) => c.ready()));
    console.log(`${n} consumers on v1; killing the consume instance`);
    await consume.kill();
    await until(() => failed.size === n, 'every consumer to see the failure');
    await new Promise((r) => setTimeout(r, downMs));
    consume = await startQuireProcess('consume-service', { ...env, QUIRE_CONSUME_HTTP_PORT: '0', QUIRE_CONSUME_GRPC_PORT: String(port) });
    const t0 = Date.now();
    procs.push(consume);
    await until(() => back.size === n, 'every consumer back');
    const times = [...back.values()].map((t) => t - t0).sort((a, b) => a - b);
    let peak = 0;
    for (let i = 0, j = 0; i < times.length; i++) {
      while ((times[i] as number) - (times[j] as number) >= 100) j++;
      peak = Math.max(peak, i - j + 1);
    }
    console.log(
      JSON.stringify({
        consumers: n,
        downMs,
        firstMs: times[0],
        medianMs: quantile(times, 0.5),
        p90Ms: quantile(times, 0.9),
        lastMs: times[times.length - 1],
        peakPer100ms: peak,
      }),
    );
  } finally {
    await Promise.all(consumers.map((c) => c.close()));
    await Promise.all(procs.map((p) => p.kill()));
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
