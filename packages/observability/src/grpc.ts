/**
 * The standard gRPC services every Quire server carries besides its own:
 * `grpc.health.v1.Health` (grpc-health-check: Check and Watch, fed by the readiness
 * checks, so a load balancer or `grpc_health_probe` sees what `/readyz` sees) and server
 * reflection v1 / v1alpha (`@grpc/reflection`: grpcurl and Postman list and call the
 * methods without the .proto files).
 */
import { dirname } from 'node:path';
import type * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { ReflectionService } from '@grpc/reflection';
import { LOADER_OPTIONS, PROTO_ROOT } from '@quire/proto';
import { HealthImplementation, protoPath as healthProtoPath, type ServingStatus } from 'grpc-health-check';

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
