/**
 * The standard gRPC services every Quire server carries besides its own:
 * `grpc.health.v1.Health` (grpc-health-check: Check and Watch, fed by the readiness
 * checks, so a load balancer or `grpc_health_probe` sees what `/readyz` sees) and server
 * reflection v1 / v1alpha (`@grpc/reflection`: grpcurl and Postman list and call the
 * methods without the .proto files).
 */
import { dirname } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { ReflectionService } from '@grpc/reflection';
import { LOADER_OPTIONS, PROTO_ROOT } from '@quire/proto';
import { HealthImplementation, protoPath as healthProtoPath, type ServingStatus } from 'grpc-health-check';
import type { QuireMetrics } from './metrics.ts';

export type { ServingStatus };

export interface GrpcHealth {
  /** Set the status of the whole server ('') and of each named service. */
  set(status: ServingStatus): void;
}

/**
 * Add health and reflection to `server`. `services` are the fully-qualified names of the
 * server's own services (e.g. `quire.v1.PublishService`), `protoFiles` the .proto files
 * (relative to the contract root) that define them. Health starts NOT_SERVING until the
 * first readiness check.
 */
export function addHealthAndReflection(server: grpc.Server, services: readonly string[], protoFiles: readonly string[]): GrpcHealth {
  const names = ['', ...services];
  const health = new HealthImplementation(Object.fromEntries(names.map((n) => [n, 'NOT_SERVING' as ServingStatus])));
  health.addToServer(server);

  const definition = protoLoader.loadSync([...protoFiles, 'health/v1/health.proto'], {
    ...LOADER_OPTIONS,
    includeDirs: [PROTO_ROOT, dirname(dirname(dirname(healthProtoPath))) /* …/proto of grpc-health-check */],
  });
  new ReflectionService(definition).addToServer(server);

  return {
    set(status) {
      for (const n of names) health.setStatus(n, status);
    },
  };
}

/** Status code names by number (grpc.status is a numeric enum: its reverse mapping). */
const CODE_NAMES: Record<number, string> = Object.fromEntries(
  Object.entries(grpc.status)
    .filter(([, v]) => typeof v === 'number')
    .map(([k, v]) => [v as number, k]),
);

/**
 * A server interceptor counting every gRPC call by method and status code when it ends
 * (`quire_grpc_calls_total`), and timing unary calls (`quire_grpc_call_duration_seconds`).
 * Pass it in the server's `interceptors` option. A call cancelled by its client counts as
 * CANCELLED.
 */
export function grpcCallMetrics(m: Pick<QuireMetrics, 'grpcCalls' | 'grpcDuration'>): grpc.ServerInterceptor {
  return (method, call) => {
    const unary = !method.requestStream && !method.responseStream;
    const started = unary ? process.hrtime.bigint() : 0n;
    let counted = false;
    const count = (code: number): void => {
      if (counted) return;
      counted = true;
      m.grpcCalls.inc({ method: method.path, code: CODE_NAMES[code] ?? String(code) });
      if (unary) m.grpcDuration.observe({ method: method.path }, Number(process.hrtime.bigint() - started) / 1e9);
    };
    return new grpc.ServerInterceptingCall(call, {
      start: (next) => next({ onCancel: () => count(grpc.status.CANCELLED) }),
      sendStatus: (status, next) => {
        count(status.code);
        next(status);
      },
    });
  };
}
