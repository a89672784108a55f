/**
 * Entry point of the publish service: configuration from the environment, start REST
 * and gRPC, log where they listen, shut down gracefully on SIGTERM / SIGINT.
 */
import { ConfigError, loadConfig } from './config.ts';
import { createPublishApp } from './app.ts';

async function main(): Promise<void> {
  let config;
  try {
    config = loadConfig(process.env);
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`quire publish-service: bad configuration: ${err.message}\n`);
      process.exit(2);
    }
    throw err;
  }
  const app = await createPublishApp(config);
  // One line a supervisor (or a test) can wait for.
  process.stdout.write(`quire publish-service listening: rest ${app.httpUrl} grpc ${app.grpcAddress}\n`);

  let stopping = false;
  const stop = (signal: string): void => {
    if (stopping) return;
    stopping = true;
    process.stdout.write(`quire publish-service: ${signal}, shutting down\n`);
    app.close().then(
      () => process.exit(0),
      (err: unknown) => {
        process.stderr.write(`quire publish-service: shutdown failed: ${String(err)}\n`);
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
}

main().catch((err: unknown) => {
  process.stderr.write(`quire publish-service: failed to start: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exit(1);
});
