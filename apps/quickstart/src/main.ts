/**
 * `npm start`: Quire on the embedded default, then where to look and what to type.
 */
import { resolve } from 'node:path';
import { startQuickstart } from './quickstart.ts';

const dataDir = resolve(process.env.QUIRE_DATA_DIR ?? resolve(import.meta.dirname, '../../../.quire-data'));
const running = await startQuickstart({ dataDir }).catch((err: unknown) => {
  process.stderr.write(`quire quickstart: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});

const api = running.publishUrl;
process.stdout.write(`
Quire is running on the embedded default (data in ${running.dataDir}).

  publish service   REST ${api}   gRPC ${running.publishGrpc}
  consume service   REST ${running.consumeUrl}   gRPC ${running.consumeGrpc}

Try it (copy-paste):

  curl -s -X POST ${api}/v1/topics -H 'content-type: application/json' \\
       -d '{"name":"devices.supported","owner":"me","description":"supported devices"}'
  curl -s -X POST ${api}/v1/topics/devices.supported/versions -H 'content-type: application/json' \\
       -d '{"data":"[\\"tv\\",\\"phone\\"]","contentType":"application/json","metadata":{"source":"quickstart"}}'
  curl -s ${api}/v1/topics/devices.supported/versions
  curl -s ${api}/v1/topics/devices.supported/versions/1/data

  # a consumer's poll (add "waitMs":30000 to long-poll until something changes):
  curl -s -X POST ${running.consumeUrl}/v1/poll -H 'content-type: application/json' \\
       -d '{"identity":{"application":"demo","instance":"i-1"},"subscriptions":[{"topic":"devices.supported","knownVersion":0}]}'

Ctrl-C stops everything.
`);

let stopping = false;
for (const sig of ['SIGINT', 'SIGTERM'] as const) {
  process.on(sig, () => {
    if (stopping) return;
    stopping = true;
    process.stdout.write('\nquire quickstart: stopping\n');
    void running.stop().then(() => process.exit(0));
  });
}
