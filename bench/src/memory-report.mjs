/* global process */
// Preloaded into a consume-service process (NODE_OPTIONS=--import …) by
// `pnpm bench --memory-consume <dir>`: on SIGUSR2 writes <dir>/consume-<pid>-<n>.json with
// process.memoryUsage() and V8's heap spaces, before and after a full GC (so the live heap
// is told apart from garbage not yet collected), plus a .heapsnapshot when
// BENCH_HEAP_SNAPSHOT=1 (open it in Chrome DevTools → Memory, or see bench/src/heap-summary.ts).
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import v8 from 'node:v8';
import vm from 'node:vm';

const dir = process.env.BENCH_MEMORY_DIR;
if (dir) {
  v8.setFlagsFromString('--expose-gc');
  const gc = vm.runInNewContext('gc');
  const mib = (n) => Math.round((n / 1048576) * 10) / 10;
  const usage = () => Object.fromEntries(Object.entries(process.memoryUsage()).map(([k, v]) => [k, mib(v)]));
  const spaces = () => Object.fromEntries(v8.getHeapSpaceStatistics().map((s) => [s.space_name, { size: mib(s.space_size), used: mib(s.space_used_size) }]));
  let n = 0;
  const peak = () => Number(/^VmHWM:\s+(\d+)/m.exec(readFileSync('/proc/self/status', 'utf8'))?.[1] ?? Number.NaN) / 1024;
  process.on('SIGUSR2', () => {
    n++;
    const before = { usage: usage(), peakRssMiB: peak(), spaces: spaces() };
    gc();
    const after = { usage: usage(), spaces: spaces() };
    const base = join(dir, `consume-${process.pid}-${n}`);
    let snapshot;
    if (process.env.BENCH_HEAP_SNAPSHOT === '1') snapshot = v8.writeHeapSnapshot(`${base}.heapsnapshot`);
    writeFileSync(`${base}.json`, JSON.stringify({ pid: process.pid, at: new Date().toISOString(), before, afterGc: after, snapshot }, null, 2));
  });
}
