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
const tokenText =
  running.adminToken !== undefined
    ? `Access control is on. An admin API token was created for you; it is shown this once (only its hash is stored):

  export QUIRE_TOKEN=${running.adminToken}

Make narrower ones with \`pnpm -s quire tokens create <name> --role publisher --prefix devices.\` (roles: admin,
operator, publisher, consumer, viewer).`
    : `Access control is on. Use the admin token printed at the first start (export QUIRE_TOKEN=<token>);
lost it? Stop, delete ${running.dataDir} and start again (or revoke and create tokens with \`quire tokens\`).`;
process.stdout.write(`
Quire is running on the embedded default (data in ${running.dataDir}).

  admin UI          ${running.uiUrl}    <- open this in a browser
  publish service   REST ${api}   gRPC ${running.publishGrpc}
  consume service   REST ${running.consumeUrl}   gRPC ${running.consumeGrpc}

${tokenText}

Try it (copy-paste, from the repository root, in a second terminal, after the export above):

  pnpm -s quire topics create devices.supported --owner me --description "supported devices"
  pnpm -s quire watch devices.supported --as application=checkout,region=local &
  echo '["tv","phone"]' | pnpm -s quire publish devices.supported - --content-type application/json --meta source=quickstart
  pnpm -s quire versions devices.supported
  pnpm -s quire get devices.supported 1

The same over REST:

  curl -s -X POST ${api}/v1/topics/devices.supported/versions -H "authorization: Bearer $QUIRE_TOKEN" -H 'content-type: application/json' \\
       -d '{"data":"[\\"tv\\",\\"phone\\",\\"watch\\"]","contentType":"application/json"}'
  curl -s -X POST ${running.consumeUrl}/v1/poll -H "authorization: Bearer $QUIRE_TOKEN" -H 'content-type: application/json' \\
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
