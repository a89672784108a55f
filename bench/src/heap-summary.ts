// `node --import tsx bench/src/heap-summary.ts <file.heapsnapshot> [top]`: self size by
// constructor (V8 node type + name) of a heap snapshot written with
// `pnpm bench --memory-consume <dir>` and BENCH_HEAP_SNAPSHOT=1, largest first; strings
// are grouped by their first 24 characters' pattern (digits as #), to see duplicated names.
import { readFileSync } from 'node:fs';

interface Snapshot {
  snapshot: { meta: { node_fields: string[]; node_types: [string[], ...unknown[]] } };
  nodes: number[];
  strings: string[];
}

const [file, topArg] = process.argv.slice(2);
if (file === undefined) {
  process.stderr.write('usage: heap-summary <file.heapsnapshot> [top]\n');
  process.exit(2);
}
const top = Number(topArg ?? 30);
const snap = JSON.parse(readFileSync(file, 'utf8')) as Snapshot;
const fields = snap.snapshot.meta.node_fields;
const types = snap.snapshot.meta.node_types[0];
const [typeAt, nameAt, sizeAt] = ['type', 'name', 'self_size'].map((f) => fields.indexOf(f)) as [number, number, number];
const byKind = new Map<string, { count: number; bytes: number }>();
const strings = new Map<string, { count: number; bytes: number }>();
let total = 0;
const add = (m: Map<string, { count: number; bytes: number }>, k: string, bytes: number): void => {
  const e = m.get(k) ?? { count: 0, bytes: 0 };
  e.count++;
  e.bytes += bytes;
  m.set(k, e);
};
for (let i = 0; i < snap.nodes.length; i += fields.length) {
  const type = types[snap.nodes[i + typeAt] as number] as string;
  const name = snap.strings[snap.nodes[i + nameAt] as number] as string;
  const size = snap.nodes[i + sizeAt] as number;
  total += size;
  const kind = type === 'object' || type === 'native' || type === 'closure' ? `${type}:${name}` : type;
  add(byKind, kind, size);
  if (type === 'string' || type === 'concatenated string' || type === 'sliced string') add(strings, name.slice(0, 24).replace(/\d/g, '#'), size);
}
const mib = (n: number): string => (n / 1048576).toFixed(1);
const show = (title: string, m: Map<string, { count: number; bytes: number }>): void => {
  process.stdout.write(`${title}\n`);
  for (const [k, v] of [...m].sort((a, b) => b[1].bytes - a[1].bytes).slice(0, top)) process.stdout.write(`${mib(v.bytes).padStart(8)} MiB ${String(v.count).padStart(9)}  ${k}\n`);
};
process.stdout.write(`total self size ${mib(total)} MiB\n`);
show('by kind:', byKind);
show('strings by pattern:', strings);
