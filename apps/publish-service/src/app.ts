/**
 * Composition root of the publish service. `createPublishApp(config)` builds the stores
 * (through `@quire/service-kit`'s `createStores`, the only caller of the adapter
 * factories) and the service, and starts REST and gRPC.
 */
import { systemClock } from '@quire/core';
import type { Clock } from '@quire/core';
import { createStores, fastifyLogger, listenTransports, type RunningService } from '@quire/service-kit';
import type { PublishConfig } from './config.ts';
import { createGrpcServer } from './grpc.ts';
import { createRestServer } from './rest.ts';
import { PublishService } from './service.ts';

// The store half, for tests of the service layer (built by the kit, as in every service).
export { createStores };
export type { Stores } from '@quire/service-kit';

/** The running service: where REST and gRPC listen, the service itself, and `close()`. */
export interface PublishApp extends RunningService {
  service: PublishService;
}

export interface PublishAppOptions {
  clock?: Clock;
}

export async function createPublishApp(config: PublishConfig, options: PublishAppOptions = {}): Promise<PublishApp> {
  const stores = await createStores(config);
  const service = new PublishService({ store: stores.store, blobs: stores.blobs, clock: options.clock ?? systemClock });
  const rest = await createRestServer(service, { bodyLimit: config.httpBodyLimitBytes, logger: fastifyLogger(config.logLevel) });
  const grpcServer = createGrpcServer(service, { onError: (err, method) => rest.log.error({ err, method }, 'grpc call failed') });
  const transports = await listenTransports(rest, grpcServer, {
    host: config.host,
    httpPort: config.httpPort,
    grpcPort: config.grpcPort,
    release: () => stores.close(),
  });
  return { ...transports, service };
}
