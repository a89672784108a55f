// `node --import tsx bench/src/held-probe.ts quire|bare [n] [snapshot-prefix]`: heap, RSS and
// release CPU of n (default 10,000) held REST long-polls on this process, without Cassandra:
// Quire's REST route (with its metrics, as app.ts mounts them) over the in-memory consume
// service of the unit tests, or a bare fastify long-poll route, answering 1,862 bytes. The
// clients are a bench worker process (worker.ts `heldPolls`, as the scale benchmark's). Memory is read after a full GC, idle
// and with every poll held (per held poll: the difference / n); the release CPU is this
// process's user + system time from the change to the last answer read by the client.
// With a snapshot prefix, <prefix>.idle.heapsnapshot and <prefix>.held.heapsnapshot are
// written (compare them with heap-summary.ts). HELD_PROBE_NO_METRICS=1 leaves Quire's poll and
// request metrics out.
import { writeHeapSnapshot } from 'node:v8';
import v8 from 'node:v8';
import vm from 'node:vm';
import Fastify from 'fastify';
import { Readiness, createMetrics, instrumentPolls, mountObservability } from '../../packages/observability/src/index.ts';
import { createRestServer } from '../../apps/consume-service/src/rest.ts';
import { memoryConsumeService, oneVersionState } from '../../apps/consume-service/src/testing.ts';
import { servicesAre, startWorker } from './env.ts';

v8.setFlagsFromString('--expose-gc');
const gc = vm.runInNewContext('gc') as () => void;
const [mode = 'quire', nArg = '10000', snap = ''] = process.argv.slice(2).filter((a) => a !== '--');
const n = Number(nArg);
const mib = (x: number): number => Math.round((x / 1048576) * 10) / 10;
const mem = (): { rss: number; heapUsed: number; external: number; arrayBuffers: number } => {
  gc();
  const u = process.memoryUsage();
  return { rss: mib(u.rss), heapUsed: mib(u.heapUsed), external: mib(u.external), arrayBuffers: mib(u.arrayBuffers) };
};
let held: () => number;
let fire: () => void;
let url: string;
const states = new Map([['t.hot', oneVersionState('t.hot', 2)]]);
const body = JSON.stringify({ identity: { application: 'bench', cluster: 'bench', region: 'region-a', instance: 'held' }, subscriptions: [{ topic: 't.hot', knownVersion: 2, appliedVersion: 2 }], waitMs: 60_000 });
if (mode === 'quire') {
  const { service, cache, change } = memoryConsumeService(states, 'x'.repeat(1024));
  const m = createMetrics('consume');
  // HELD_PROBE_NO_METRICS=1: without the poll and request metrics (what they cost).
  const metered = process.env['HELD_PROBE_NO_METRICS'] !== '1';
  if (metered) instrumentPolls(service as never, m);
  const app = await createRestServer(service, cache, { logger: { level: 'warn' } });
  if (metered) mountObservability(app, { metrics: m, readiness: new Readiness({ checks: [] }) });
  // One answer first, as a serving process has given: it compiles the route's response validation.
  const warm = await app.inject({ method: 'POST', url: '/v1/poll', payload: { identity: { instance: 'warm' }, subscriptions: [{ topic: 't.hot', knownVersion: 0 }] } });
  process.stderr.write(`quire answer: ${warm.statusCode}, ${warm.rawPayload.byteLength} bytes\n`);
  url = `${await app.listen({ host: '127.0.0.1', port: 0 })}/v1/poll`;
  held = () => service.heldPolls;
  fire = () => {
    states.set('t.hot', oneVersionState('t.hot', 3));
    change('t.hot');
  };
} else {
  const app = Fastify({ logger: false });
  const waiters = new Set<() => void>();
  const reply = 'x'.repeat(1862);
  app.post('/v1/poll', (_r, res) => {
    const done = (): void => {
      waiters.delete(done);
      void res.header('content-type', 'application/json; charset=utf-8').send(reply);
    };
    waiters.add(done);
  });
  url = `${await app.listen({ host: '127.0.0.1', port: 0 })}/v1/poll`;
  held = () => waiters.size;
  fire = () => {
    for (const w of [...waiters]) w();
  };
}
const idle = mem();
if (snap) writeHeapSnapshot(`${snap}.idle.heapsnapshot`);
// The worker from its TypeScript source: this tool runs without `pnpm build`.
servicesAre('source');
const client = await startWorker('held-probe');
await client.call({ op: 'heldPolls', url, body, n });
while (held() < n) await new Promise((r) => setTimeout(r, 100));
await new Promise((r) => setTimeout(r, 500));
const hold = mem();
if (snap) writeHeapSnapshot(`${snap}.held.heapsnapshot`);
const c0 = process.cpuUsage();
const done = client.call<{ ns: number[]; errors: number; missing: number }>({ op: 'waitAnswered', timeoutMs: 60_000 });
fire();
const answered = (await done).ns.length;
const c1 = process.cpuUsage(c0);
console.log(JSON.stringify({ mode, n, idle, held: hold, perPollKiB: { rss: Math.round(((hold.rss - idle.rss) * 1024 * 10) / n) / 10, heap: Math.round(((hold.heapUsed - idle.heapUsed) * 1024 * 10) / n) / 10 }, answered, releaseCpuMs: Math.round((c1.user + c1.system) / 1000) }));
await client.stop();
process.exit(0);
