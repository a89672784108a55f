// `pnpm bench`: every benchmark against the real servers, with progress on stderr; writes
// bench/results/<date>.json and bench/REPORT.md (+ bench/report/*.svg). `--quick` runs every
// code path with tiny sizes and writes under .cache/bench-quick/ instead (not the committed report).
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Command, InvalidArgumentError, Option } from 'commander';
import { BENCHMARKS, CAPACITY_SETTINGS, runBench, type BenchResults, type BenchmarkName } from './harness.ts';
import { writeReport } from './report.ts';
import { capacityInputs, capacityModel } from './capacity.ts';
import { consumeNodeOptionsAre, log, memoryConsumeInto, profileConsumeInto, servicesAre, type ServicesFrom } from './env.ts';

const BENCH_DIR = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const REPO = resolve(BENCH_DIR, '..');

function benchList(value: string): BenchmarkName[] {
  const names = value.split(',').map((s) => s.trim()).filter(Boolean);
  for (const n of names) {
    if (!(BENCHMARKS as readonly string[]).includes(n)) throw new InvalidArgumentError(`unknown benchmark "${n}" (one of ${BENCHMARKS.join(', ')})`);
  }
  return names as BenchmarkName[];
}

function positiveInt(value: string): number {
  const n = Number(value);
  if (!Number.isSafeInteger(n) || n <= 0) throw new InvalidArgumentError('must be a positive integer');
  return n;
}

const program = new Command('bench')
  .description('Quire benchmarks: propagation, poll cost, large payloads, scale, publish throughput (and the capacity model), side by side with their references')
  .option('--quick', 'tiny sizes: every code path in a couple of minutes; writes under .cache/bench-quick/', false)
  .addOption(new Option('--only <list>', `comma-separated subset of: ${BENCHMARKS.join(', ')}`).argParser(benchList))
  .option('--reps <n>', 'repetitions of each comparison', positiveInt)
  .addOption(new Option('--consumers <list>', 'propagation: comma-separated consumer counts (default 100,1000)').argParser((v) => v.split(',').map((x) => positiveInt(x.trim()))))
  .option('--poll-interval-ms <ms>', 'propagation: interval of the polling (non long-poll) consumers (default 30000)', positiveInt)
  .option('--scale-topics <n>', 'topics in the scale benchmark (default 10000)', positiveInt)
  .option('--held-polls <n>', 'held long-polls in the scale benchmark (default 10000)', positiveInt)
  .addOption(new Option('--payload-mib <list>', 'large payloads: comma-separated sizes in MiB (default 100,1024)').argParser((v) => v.split(',').map((x) => positiveInt(x.trim()))))
  .option('--profile-consume <dir>', 'consume-service processes write V8 CPU profiles (.cpuprofile) into <dir> when they stop')
  .option('--memory-consume <dir>', 'scale: consume-service processes write a memory breakdown (process.memoryUsage, V8 heap spaces, before/after a full GC; a .heapsnapshot too with BENCH_HEAP_SNAPSHOT=1) into <dir> once every topic is loaded')
  .option('--consume-node-options <flags>', 'extra Node/V8 flags for consume-service processes (NODE_OPTIONS), e.g. "--max-semi-space-size=4" to compare heap settings')
  .addOption(new Option('--services <from>', 'how the Quire services run: compiled (pnpm build, node apps/<app>/dist/main.js, as deployed) or source (node --import tsx, as the tests run them)').choices(['compiled', 'source']).default('compiled'))
  .option('--report-from <json>', 'do not run anything: rewrite REPORT.md and its charts from an earlier results file')
  .option('--merge-from <json>', 'with --report-from: copy the benchmarks present in <json> (a later run of some of them) into the --report-from file, noting it, then write the report')
  .option('--out <dir>', 'where to write results/<date>.json, REPORT.md and report/ (default: bench/, or .cache/bench-quick/ with --quick)')
  .showHelpAfterError();

program.parse(process.argv.filter((a) => a !== '--'));
const opts = program.opts<{ quick: boolean; only?: BenchmarkName[]; reps?: number; scaleTopics?: number; heldPolls?: number; out?: string; profileConsume?: string; memoryConsume?: string; consumeNodeOptions?: string; services: ServicesFrom; reportFrom?: string; mergeFrom?: string; consumers?: number[]; pollIntervalMs?: number; payloadMib?: number[] }>();
if (opts.profileConsume) {
  mkdirSync(resolve(opts.profileConsume), { recursive: true });
  profileConsumeInto(resolve(opts.profileConsume));
}
consumeNodeOptionsAre(opts.consumeNodeOptions);
servicesAre(opts.services);
if (opts.memoryConsume) {
  mkdirSync(resolve(opts.memoryConsume), { recursive: true });
  memoryConsumeInto(resolve(opts.memoryConsume));
}
const out = resolve(opts.out ?? (opts.quick ? join(REPO, '.cache', 'bench-quick') : BENCH_DIR));

const sizes: Record<string, number | number[]> = {};
if (opts.consumers) sizes['consumers'] = opts.consumers;
if (opts.pollIntervalMs) sizes['pollIntervalMs'] = opts.pollIntervalMs;
if (opts.reps) sizes['reps'] = opts.reps;
if (opts.scaleTopics) sizes['scaleTopics'] = opts.scaleTopics;
if (opts.heldPolls) sizes['heldPolls'] = opts.heldPolls;
if (opts.payloadMib) sizes['payloads'] = opts.payloadMib.map((m) => m * 1024 * 1024);

if (opts.reportFrom) {
  const from = resolve(opts.reportFrom);
  const earlier = JSON.parse(readFileSync(from, 'utf8')) as BenchResults;
  if (opts.mergeFrom) {
    const later = JSON.parse(readFileSync(resolve(opts.mergeFrom), 'utf8')) as BenchResults;
    const merged = BENCHMARKS.filter((b) => later[b] !== undefined);
    for (const b of merged) (earlier as unknown as Record<string, unknown>)[b] = later[b];
    earlier.errors = [...earlier.errors.filter((e) => !merged.includes(e.benchmark)), ...later.errors];
    earlier.notes = [
      ...(earlier.notes ?? []),
      `${merged.join(', ')} re-run separately ${later.startedAt} → ${later.finishedAt} (load average at start ${later.machine.loadAverageAtStart.map((x) => x.toFixed(1)).join(' / ')}) and merged here.`,
    ];
  }
  // The model is derived data: recompute it with this build's model.
  const inputs = capacityInputs(earlier.poll, earlier.scale, CAPACITY_SETTINGS);
  if (inputs) earlier.capacity = capacityModel(inputs);
  if (opts.mergeFrom) writeFileSync(from, JSON.stringify(earlier, null, 2) + '\n');
  const report = writeReport(earlier, join(out, 'REPORT.md'), from, join(BENCH_DIR, 'analysis.md'));
  log(`${join(out, 'REPORT.md')} rewritten from ${from} (${report.charts.length} charts)`);
  process.exit(0);
}

const t0 = Date.now();
const results = await runBench({ quick: opts.quick, only: opts.only ?? [...BENCHMARKS], sizes });
const date = results.startedAt.slice(0, 10);
const resultsPath = join(out, 'results', `${date}${opts.quick ? '-quick' : ''}.json`);
mkdirSync(dirname(resultsPath), { recursive: true });
writeFileSync(resultsPath, JSON.stringify(results, null, 2) + '\n');
const report = writeReport(results, join(out, 'REPORT.md'), resultsPath, join(BENCH_DIR, 'analysis.md'));
log(`done in ${Math.round((Date.now() - t0) / 1000)} s: ${resultsPath}, ${join(out, 'REPORT.md')} (${report.charts.length} charts)`);
if (results.errors.length) {
  log(`${results.errors.length} benchmark(s) failed: ${results.errors.map((e) => e.benchmark).join(', ')}`);
  process.exitCode = 1;
}
