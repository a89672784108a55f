/**
 * `observe(...)`: everything a service adds once its REST app and gRPC server exist, in
 * one call from its composition root: `/metrics` and `/readyz` on REST, health and
 * reflection on gRPC, the readiness checks feeding both (and the gauges), refreshed in
 * the background. `stop()` turns gRPC health to NOT_SERVING and `/readyz` to 503 (call it
 * first when shutting down).
 */
import type * as grpc from '@grpc/grpc-js';
import type { FastifyInstance } from 'fastify';
import { addHealthAndReflection } from './grpc.ts';
import type { QuireMetrics } from './metrics.ts';
import { Readiness, type ReadinessCheck } from './readiness.ts';
import { mountObservability } from './rest.ts';

export interface ObserveOptions {
  metrics: QuireMetrics;
  rest: FastifyInstance;
  grpcServer: grpc.Server;
  /** The server's own gRPC services (fully qualified) and the .proto files defining them. */
  grpcServices: readonly string[];
  protoFiles: readonly string[];
  checks: ReadinessCheck[];
  /** Background readiness refresh (default 5000 ms). */
  readinessIntervalMs?: number;
}

export interface Observed {
  readiness: Readiness;
  /** Start the background readiness checks (once the servers listen). */
  start(): void;
  /** Not ready from now on (shutting down), and no more background checks. */
  stop(): void;
}

export function observe(options: ObserveOptions): Observed {
  const health = addHealthAndReflection(options.grpcServer, options.grpcServices, options.protoFiles);
  const readiness = new Readiness({
    checks: options.checks,
    metrics: options.metrics,
    ...(options.readinessIntervalMs === undefined ? {} : { intervalMs: options.readinessIntervalMs }),
    onReport: (report) => health.set(report.ready ? 'SERVING' : 'NOT_SERVING'),
  });
  mountObservability(options.rest, { metrics: options.metrics, readiness });
  return {
    readiness,
    start: () => readiness.start(),
    stop: () => readiness.stop(),
  };
}
