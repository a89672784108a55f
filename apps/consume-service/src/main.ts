/**
 * Entry point of the consume service: configuration from the environment, fill the
 * cache, start REST and gRPC, log where they listen; on SIGTERM / SIGINT answer held
 * long-polls, then shut down.
 */
import { ConfigError, loadConfig } from './config.ts';
import { createConsumeApp } from './app.ts';

async function main(): Promise<void> {
  let config;
  try {
    config = loadConfig(process.env);
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`quire consume-service: bad configuration: ${err.message}\n`);
      process.exit(2);
    }
    throw err;
  }
  const app = await createConsumeApp(config);
  process.stdout.write(`quire consume-service listening: rest ${app.httpUrl} grpc ${app.grpcAddress}\n`);

  let stopping = false;
  const stop = (signal: string): void => {
    if (stopping) return;
    stopping = true;
    process.stdout.write(`quire consume-service: ${signal}, draining ${app.service.heldPolls} held polls and shutting down\n`);
    app.close().then(
      () => process.exit(0),
      (err: unknown) => {
        process.stderr.write(`quire consume-service: shutdown failed: ${String(err)}\n`);
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
}

main().catch((err: unknown) => {
  process.stderr.write(`quire consume-service: failed to start: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exit(1);
});
