/**
 * Entry point of the consume service: configuration from the environment, fill the
 * cache, start REST and gRPC, log where they listen; on SIGTERM / SIGINT answer held
 * long-polls, then shut down.
 */
import { runService } from '@quire/service-kit';
import { createConsumeApp } from './app.ts';
import { loadConfig } from './config.ts';

runService('consume-service', (env) => createConsumeApp(loadConfig(env)), {
  stopping: (app) => `draining ${app.service.heldPolls} held polls and shutting down`,
});
