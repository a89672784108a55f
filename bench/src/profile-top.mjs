/* global process, console */
// Summarises a .cpuprofile: the functions with the most self time
// (node bench/src/profile-top.mjs <file> [n] [windows.jsonl [marginMs]]). With a windows file
// (a profiled worker writes <name>-<pid>.windows.jsonl: each version's first answer to its
// last handler, CLOCK_MONOTONIC ns, the clock V8 stamps samples with), only the samples in
// those windows (widened by marginMs, default 5) are counted.
import { readFileSync } from 'node:fs';
const [file, n = '20', windowsFile, marginMs = '5'] = process.argv.slice(2);
const p = JSON.parse(readFileSync(file, 'utf8'));
const margin = Number(marginMs) * 1000;
const windows = windowsFile
  ? readFileSync(windowsFile, 'utf8')
      .split('\n')
      .filter((l) => l.trim() !== '')
      .map((l) => JSON.parse(l))
      .map((w) => [w.from / 1000 - margin, w.to / 1000 + margin])
  : undefined;
const inWindow = (t) => windows === undefined || windows.some(([a, b]) => t >= a && t <= b);
const dt = new Map();
let t = p.startTime;
for (let i = 0; i < p.samples.length; i++) {
  t += p.timeDeltas[i] ?? 0;
  // A sample's time is the interval up to the next one.
  const d = p.timeDeltas[i + 1] ?? 0;
  if (inWindow(t)) dt.set(p.samples[i], (dt.get(p.samples[i]) ?? 0) + d);
}
const self = new Map();
let total = 0;
for (const node of p.nodes) {
  const t = dt.get(node.id) ?? 0;
  total += t;
  const f = node.callFrame;
  const key = `${f.functionName || '(anonymous)'} ${f.url.replace(/^.*node_modules\/\.pnpm\/[^/]+\/node_modules\//, '').replace(/^file:\/\/.*?\/(apps|packages)\//, '$1/')}:${f.lineNumber + 1}`;
  self.set(key, (self.get(key) ?? 0) + t);
}
if (windows !== undefined) console.log(`${windows.length} windows, ${(windows.reduce((a, [x, y]) => a + y - x, 0) / 1000).toFixed(0)} ms wall`);
console.log(`total sampled ${(total / 1000).toFixed(0)} ms`);
for (const [k, t] of [...self].sort((a, b) => b[1] - a[1]).slice(0, Number(n))) console.log(`${((100 * t) / total).toFixed(1).padStart(5)}%  ${(t / 1000).toFixed(0).padStart(6)} ms  ${k}`);
