// What every benchmark gets: the servers, the run's sizes (full or quick), and progress.
import type { Etcd, Servers } from './env.ts';

export interface Sizes {
  /** Repetitions of each side-by-side comparison. */
  reps: number;
  /** Propagation: consumer counts. */
  consumers: number[];
  /** Propagation: the polling (non long-poll) interval. */
  pollIntervalMs: number;
  /** Propagation: consumers receiving the S3-backed version. */
  s3Consumers: number;
  s3PayloadBytes: number;
  /** Poll cost: topics per consumer, calls in flight, seconds per measurement. */
  pollTopics: number[];
  inflight: number[];
  pollSeconds: number;
  /** Large payloads, bytes. */
  payloads: number[];
  /** Scale: topics × versions, held long-polls. */
  scaleTopics: number;
  scaleVersions: number;
  heldPolls: number;
  /** Publish throughput: topics spread over, seconds per measurement, calls in flight. */
  publishTopics: number;
  publishSeconds: number;
  publishInflight: number;
}

const MiB = 1024 * 1024;

export const FULL: Sizes = {
  reps: 3,
  consumers: [100, 1000],
  pollIntervalMs: 30_000,
  s3Consumers: 100,
  s3PayloadBytes: 10 * MiB,
  pollTopics: [10, 200],
  inflight: [16, 64, 256],
  pollSeconds: 3,
  payloads: [100 * MiB, 1024 * MiB],
  scaleTopics: 10_000,
  scaleVersions: 5,
  heldPolls: 10_000,
  publishTopics: 100,
  publishSeconds: 5,
  publishInflight: 32,
};

/** `--quick`: every code path, tiny sizes (a couple of minutes; the CI smoke run uses smaller still). */
export const QUICK: Sizes = {
  reps: 2,
  consumers: [10],
  pollIntervalMs: 2000,
  s3Consumers: 4,
  s3PayloadBytes: 2 * MiB,
  pollTopics: [10],
  inflight: [16],
  pollSeconds: 1,
  payloads: [16 * MiB],
  scaleTopics: 30,
  scaleVersions: 2,
  heldPolls: 200,
  publishTopics: 10,
  publishSeconds: 1,
  publishInflight: 8,
};

export interface Context {
  servers: Servers;
  etcd: Etcd;
  sizes: Sizes;
  /** Progress line on stderr. */
  progress(msg: string): void;
}
