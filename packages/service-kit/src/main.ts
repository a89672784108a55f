/**
 * The process entry of a Quire service: start it from `process.env`, print the one
 * `listening` line a supervisor (or a test) waits for, shut down gracefully on SIGTERM /
 * SIGINT. A bad configuration (ConfigError) exits with status 2, any other start failure
 * with 1.
 */
import { ConfigError, type Env } from './config.ts';
import type { Transports } from './transports.ts';

/** A started service: where its REST and gRPC servers listen, and its graceful stop. */
export type RunningService = Transports;

export interface RunServiceOptions<S extends RunningService> {
  /** What the service does on a stop signal, for the log line (default `shutting down`). */
  stopping?: (service: S) => string;
  /** Default `process.env`. */
  env?: Env;
}

/** Start `start(env)` as this process's service `name` (e.g. `publish-service`). */
export function runService<S extends RunningService>(name: string, start: (env: Env) => Promise<S>, options: RunServiceOptions<S> = {}): void {
  const prefix = `quire ${name}`;
  const main = async (): Promise<void> => {
    let service: S;
    try {
      service = await start(options.env ?? process.env);
    } catch (err) {
      if (err instanceof ConfigError) {
        process.stderr.write(`${prefix}: bad configuration: ${err.message}\n`);
        process.exit(2);
      }
      throw err;
    }
    // One line a supervisor (or a test) can wait for.
    process.stdout.write(`${prefix} listening: rest ${service.httpUrl} grpc ${service.grpcAddress}\n`);

    let stopping = false;
    const stop = (signal: string): void => {
      if (stopping) return;
      stopping = true;
      process.stdout.write(`${prefix}: ${signal}, ${options.stopping?.(service) ?? 'shutting down'}\n`);
      service.close().then(
        () => process.exit(0),
        (err: unknown) => {
          process.stderr.write(`${prefix}: shutdown failed: ${String(err)}\n`);
          process.exit(1);
        },
      );
    };
    process.on('SIGTERM', () => stop('SIGTERM'));
    process.on('SIGINT', () => stop('SIGINT'));
  };
  main().catch((err: unknown) => {
    process.stderr.write(`${prefix}: failed to start: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exit(1);
  });
}
