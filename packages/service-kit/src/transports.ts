/**
 * A service's two servers, REST (fastify) and gRPC (grpc-js), started and stopped
 * together on the configured host and ports.
 */
import * as grpc from '@grpc/grpc-js';
import type { FastifyInstance } from 'fastify';

export interface ListenOptions {
  host: string;
  /** 0 = any free port. */
  httpPort: number;
  grpcPort: number;
  /** Connections and calls still open this long after `close()` starts are cut. Default 5 s. */
  graceMs?: number;
  /** Called first on `close()`, e.g. to answer held long-polls so the servers' graceful close does not wait on them. */
  drain?: () => void;
  /** Called once the servers are stopped, or when they could not listen: close what the service holds (stores…). */
  release?: () => Promise<void>;
}

export interface Transports {
  /** `http://host:port` of the REST API. */
  httpUrl: string;
  /** `host:port` of the gRPC server. */
  grpcAddress: string;
  /** Graceful stop of both servers (open requests finish, up to the grace period), then `release`. Idempotent. */
  close(): Promise<void>;
}

/** Listen with both servers. If either cannot, both are stopped, `release` is called and the error is rethrown. */
export async function listenTransports(rest: FastifyInstance, grpcServer: grpc.Server, options: ListenOptions): Promise<Transports> {
  const graceMs = options.graceMs ?? 5000;
  let httpUrl: string;
  let grpcAddress: string;
  try {
    await rest.listen({ host: options.host, port: options.httpPort });
    const addr = rest.server.address();
    const httpPort = typeof addr === 'object' && addr !== null ? addr.port : options.httpPort;
    const grpcPort = await new Promise<number>((resolve, reject) => {
      grpcServer.bindAsync(`${options.host}:${options.grpcPort}`, grpc.ServerCredentials.createInsecure(), (err, port) => (err ? reject(err) : resolve(port)));
    });
    const host = options.host.includes(':') ? `[${options.host}]` : options.host;
    httpUrl = `http://${host}:${httpPort}`;
    grpcAddress = `${host}:${grpcPort}`;
  } catch (err) {
    grpcServer.forceShutdown();
    await rest.close();
    await options.release?.();
    throw err;
  }
  let closing: Promise<void> | undefined;
  return {
    httpUrl,
    grpcAddress,
    close() {
      closing ??= (async () => {
        options.drain?.();
        const cut = setTimeout(() => rest.server.closeAllConnections(), graceMs);
        cut.unref();
        await Promise.all([
          rest.close().finally(() => clearTimeout(cut)),
          new Promise<void>((resolve) => {
            grpcServer.tryShutdown(() => resolve());
            setTimeout(() => grpcServer.forceShutdown(), graceMs).unref();
          }),
        ]);
        await options.release?.();
      })();
      return closing;
    },
  };
}
