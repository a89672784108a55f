/**
 * Test helper run as a separate process (`node --import tsx multiprocess.fixture.ts …`) by
 * `embedded.int.test.ts`, to check that several processes sharing one database file
 * allocate versions without gaps or duplicates and never share a lease.
 *
 * argv: <db path> <topic> <commits> <lease name> <owner>. Prints "ready", waits for a line
 * on stdin holding a start time (ms since the epoch; every process starts then, so they
 * really contend), works, then prints one JSON line:
 * { committed: [publishId, version][], lease: Lease | null }.
 */
import { randomUUID } from 'node:crypto';
import { once } from 'node:events';
import { createEmbeddedMetadataStore } from './store.ts';

const [path, topic, commitsArg, leaseName, owner] = process.argv.slice(2);
if (!path || !topic || !commitsArg || !leaseName || !owner) {
  process.stderr.write('usage: multiprocess.fixture.ts <db path> <topic> <commits> <lease name> <owner>\n');
  process.exit(2);
}

const store = createEmbeddedMetadataStore({ path });
await store.migrate();
process.stdout.write('ready\n');
const [line] = (await once(process.stdin, 'data')) as [Buffer];
const startAt = Number(line.toString().trim());
await new Promise((resolve) => setTimeout(resolve, Math.max(0, startAt - Date.now())));

const lease = await store.tryAcquireLease(leaseName, owner, 60_000);
const committed: [string, number][] = [];
for (let i = 0; i < Number(commitsArg); i++) {
  const publishId = `${owner}-${randomUUID()}`;
  const v = await store.commitVersion({
    topic,
    publishId,
    createdAt: Date.now(),
    publisher: owner,
    metadata: { i: String(i) },
    contentType: 'text/plain',
    size: 1,
    sha256: '0'.repeat(64),
    pointer: { kind: 's3', locations: [{ region: 'local', bucket: 'b', key: `${topic}/${publishId}` }] },
  });
  committed.push([publishId, v.version]);
}
await store.close();
process.stdout.write(`${JSON.stringify({ committed, lease: lease ?? null })}\n`);
process.stdin.destroy();
