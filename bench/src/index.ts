// Public surface of @quire/bench: run the benchmarks and render their report (the CLI is main.ts).
export { BENCHMARKS, runBench } from './harness.ts';
export type { BenchResults, BenchmarkName, RunOptions } from './harness.ts';
export { writeReport, targets } from './report.ts';
export { capacityModel } from './capacity.ts';
export { percentile, spread } from './stats.ts';
