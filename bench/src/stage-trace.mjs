/* global process, setInterval, setImmediate */
// Preloaded into the consume-service process (NODE_OPTIONS=--import …) by the propagation
// benchmark: subscribes to the service's stage markers (apps/consume-service/src/diagnostics.ts,
// Node diagnostics_channel, inert without a subscriber), stamps each with the system-wide
// monotonic clock (process.hrtime.bigint(), the bench's clock) as it is published, and
// appends JSON lines to $BENCH_STAGE_TRACE_FILE:
//   {"s":"hint","topic":…,"ns":…}       a change hint received
//   {"s":"changed","topic":…,"ns":…}    topic state replaced, held polls woken
//   {"s":"answered","topic":…,"version":…,"first":…,"last":…,"count":…,"loopFree":…}
//                                       held polls answered with that version (running
//                                       aggregate: the last line of a key is the total);
//                                       loopFree: the event loop's next check phase after
//                                       the last of them (setImmediate), i.e. once the
//                                       transport's synchronous work on the answers (grpc-js
//                                       callbacks: HTTP/2 headers, message, trailers) is done
// Lines are buffered and written every 250 ms and at exit, off the measured path.
// With $BENCH_CONSUME_CPU_FILE too, each answered line's total is also appended there with
// cpuMs: this process's CPU time (user + system) from the topic's last `changed` (the held
// polls woken) to loopFree, i.e. the service's work on the wake and the answers (and anything
// else it did meanwhile); CPU time, unlike wall time, does not count waiting for a core.
import { appendFileSync } from 'node:fs';
import { subscribe } from 'node:diagnostics_channel';

const file = process.env.BENCH_STAGE_TRACE_FILE;
if (file) {
  const now = () => Number(process.hrtime.bigint());
  let lines = [];
  /** @type {Map<string, {topic: string, version: number, first: number, last: number, count: number}>} */
  const answered = new Map();
  const dirty = new Set();
  /** Keys with a loopFree stamp scheduled. */
  const waiting = new Set();
  subscribe('quire.consume.hint', (m) => lines.push({ s: 'hint', topic: m.topic, ns: now() }));
  const cpuFile = process.env.BENCH_CONSUME_CPU_FILE;
  /** CPU time (µs) at each topic's last `changed`. */
  const cpuAtChanged = new Map();
  const cpuNow = () => {
    const c = process.cpuUsage();
    return c.user + c.system;
  };
  subscribe('quire.consume.topicChanged', (m) => {
    lines.push({ s: 'changed', topic: m.topic, ns: now() });
    if (cpuFile) cpuAtChanged.set(m.topic, cpuNow());
  });
  subscribe('quire.consume.pollAnswered', (r) => {
    const ns = now();
    for (const u of r.updates) {
      const key = `${u.topic} ${u.version.version}`;
      let a = answered.get(key);
      if (a === undefined) {
        a = { topic: u.topic, version: u.version.version, first: ns, last: ns, count: 1, loopFree: ns };
        answered.set(key, a);
      } else {
        a.last = ns;
        a.count++;
      }
      if (!waiting.has(key)) {
        waiting.add(key);
        const entry = a;
        setImmediate(() => {
          entry.loopFree = now();
          const at = cpuAtChanged.get(entry.topic);
          if (cpuFile && at !== undefined) entry.cpuMs = (cpuNow() - at) / 1000;
          waiting.delete(key);
          dirty.add(key);
        });
      }
      dirty.add(key);
    }
  });
  let cpuLines = [];
  const flush = () => {
    for (const key of dirty) {
      const { cpuMs, ...a } = answered.get(key);
      lines.push({ s: 'answered', ...a });
      if (cpuMs !== undefined) cpuLines.push({ topic: a.topic, version: a.version, count: a.count, cpuMs });
    }
    if (cpuLines.length > 0) {
      appendFileSync(cpuFile, cpuLines.map((l) => JSON.stringify(l)).join('\n') + '\n');
      cpuLines = [];
    }
    dirty.clear();
    if (lines.length === 0) return;
    const out = lines.map((l) => JSON.stringify(l)).join('\n') + '\n';
    lines = [];
    appendFileSync(file, out);
  };
  setInterval(flush, 250).unref();
  process.on('exit', flush);
}
