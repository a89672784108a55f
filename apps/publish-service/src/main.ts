/**
 * Entry point of the publish service: configuration from the environment, start REST
 * and gRPC, log where they listen, shut down gracefully on SIGTERM / SIGINT.
 */
import { runService } from '@quire/service-kit';
import { createPublishApp } from './app.ts';
import { loadConfig } from './config.ts';

runService('publish-service', (env) => createPublishApp(loadConfig(env)));
