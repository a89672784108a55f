/* global process, URL, Buffer, setTimeout */
// The clients of held-probe.ts: n POSTs of <body> to <url>, each on its own connection (spread
// over 256 loopback source addresses), held by the server; tells the parent when all are answered.
import http from 'node:http';

const [u, nArg, body] = process.argv.slice(2);
const url = new URL(u);
const n = Number(nArg);
let answered = 0;
const send = (i, attempt) => {
  const r = http.request(
    {
      host: url.hostname,
      port: url.port,
      path: url.pathname,
      method: 'POST',
      agent: false,
      localAddress: `127.0.${1 + ((i >> 6) % 4)}.${2 + (i % 64)}`,
      headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) },
    },
    (res) => {
      res.on('data', () => {});
      res.on('end', () => {
        if (++answered === n) process.send(answered);
      });
    },
  );
  r.on('error', () => {
    if (attempt < 5) setTimeout(() => send(i, attempt + 1), 100 * attempt);
  });
  r.end(body);
};
for (let i = 0; i < n; i++) {
  send(i, 1);
  if (i % 100 === 99) await new Promise((r) => setTimeout(r, 20));
}
