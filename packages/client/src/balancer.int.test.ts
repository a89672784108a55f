// The health-checked endpoint pool against real gRPC servers speaking grpc.health.v1
// (grpc-node's HealthImplementation): SERVING, NOT_SERVING, no health service at all
// (UNIMPLEMENTED = serving when it answers), and a closed port.
import { until } from './testing.ts';
import * as grpc from '@grpc/grpc-js';
import { HealthImplementation } from 'grpc-health-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HealthCheckedPool, type EndpointHealth } from './balancer.ts';

const SERVICE = 'quire.v1.ConsumeService';
const servers: grpc.Server[] = [];
const health: Record<string, HealthImplementation> = {};
const address: Record<'serving' | 'draining' | 'nohealth' | 'closed', string> = { serving: '', draining: '', nohealth: '', closed: '' };

function listen(server: grpc.Server): Promise<string> {
  return new Promise((resolve, reject) =>
    server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, port) => (err ? reject(err) : resolve(`127.0.0.1:${port}`))),
  );
}

beforeAll(async () => {
  for (const [name, status] of [
    ['serving', 'SERVING'],
    ['draining', 'NOT_SERVING'],
  ] as const) {
    const server = new grpc.Server();
    const h = new HealthImplementation({ [SERVICE]: status });
    h.addToServer(server);
    health[name] = h;
    address[name] = await listen(server);
    servers.push(server);
  }
  const bare = new grpc.Server();
  address.nohealth = await listen(bare);
  servers.push(bare);
  // A port that was free a moment ago and has no server now.
  const gone = new grpc.Server();
  address.closed = await listen(gone);
  gone.forceShutdown();
});

afterAll(() => {
  for (const s of servers) s.forceShutdown();
});

describe('HealthCheckedPool', () => {
  it('takes serving endpoints round-robin, skips NOT_SERVING and unreachable ones, follows changes', async () => {
    const order = [address.serving, address.draining, address.nohealth, address.closed];
    const clients = new Map<grpc.Client, string>();
    const changes: [string, EndpointHealth][] = [];
    const pool = new HealthCheckedPool(
      order,
      (a) => {
        const c = new grpc.Client(a, grpc.credentials.createInsecure());
        clients.set(c, a);
        return c;
      },
      { intervalMs: 100, timeoutMs: 1000 },
    );
    pool.onHealthChange = (a, s) => changes.push([a, s]);
    try {
      const state = () => Object.fromEntries(pool.health().map((h) => [h.address, h.state]));
      await until(() => Object.values(state()).every((s) => s !== 'unknown'), 'every endpoint checked');
      expect(state()).toEqual({
        [address.serving]: 'serving',
        [address.draining]: 'not-serving',
        [address.nohealth]: 'serving',
        [address.closed]: 'not-serving',
      });
      const picks = Array.from({ length: 6 }, () => clients.get(pool.pick()));
      expect(picks).toEqual([address.serving, address.nohealth, address.serving, address.nohealth, address.serving, address.nohealth]);

      // The draining one comes back; the serving one starts draining.
      health.draining?.setStatus(SERVICE, 'SERVING');
      health.serving?.setStatus(SERVICE, 'NOT_SERVING');
      await until(() => state()[address.draining] === 'serving' && state()[address.serving] === 'not-serving', 'the swap seen');
      const after = new Set(Array.from({ length: 4 }, () => clients.get(pool.pick())));
      expect(after).toEqual(new Set([address.draining, address.nohealth]));
      expect(changes).toContainEqual([address.serving, 'not-serving']);
      expect(changes).toContainEqual([address.draining, 'serving']);

      // None healthy: every address is still tried in turn (a failed check never stops a consumer).
      const lonely = new HealthCheckedPool([address.closed], (a) => new grpc.Client(a, grpc.credentials.createInsecure()), { intervalMs: 100 });
      await until(() => lonely.health()[0]?.state === 'not-serving', 'closed port seen');
      expect(lonely.pick()).toBeInstanceOf(grpc.Client);
      lonely.close();
    } finally {
      pool.close();
    }
  });
});
