/**
 * Quire as operators meet it, for the browser tests and the screenshot script: the publish
 * and consume services as their own processes (`startQuireProcess`), and the UI server
 * (built when stale) proxying /api to the publish service.
 */
import { startQuireProcess, type QuireProcess } from '@quire/test-servers';
import { buildUi, startUiServer, type RunningUiServer } from '../server/index.ts';

export interface Stack {
  publish: QuireProcess;
  consume: QuireProcess;
  ui: RunningUiServer;
  stop(): Promise<(number | null)[]>;
}

/** `env`: the store settings (QUIRE_METADATA_STORE etc.) shared by both services. */
export async function startStack(env: Record<string, string>): Promise<Stack> {
  await buildUi({ log: (l) => process.stdout.write(`${l}\n`) });
  // The publish service migrates the store first; the consume service starts after it.
  const publish = await startQuireProcess('publish-service', {
    ...env,
    QUIRE_PUBLISH_HTTP_PORT: '0',
    QUIRE_PUBLISH_GRPC_PORT: '0',
    QUIRE_SCHEDULER_TICK_MS: '200',
  });
  let consume: QuireProcess;
  try {
    consume = await startQuireProcess('consume-service', {
      ...env,
      QUIRE_CONSUME_HTTP_PORT: '0',
      QUIRE_CONSUME_GRPC_PORT: '0',
      QUIRE_FLEET_FLUSH_MS: '300',
      QUIRE_CHANGE_POLL_MS: '100',
    });
  } catch (err) {
    await publish.stop();
    throw err;
  }
  let ui: RunningUiServer;
  try {
    ui = await startUiServer({ publishUrl: publish.httpUrl, port: 0 });
  } catch (err) {
    await Promise.all([publish.stop(), consume.stop()]);
    throw err;
  }
  return {
    publish,
    consume,
    ui,
    async stop() {
      await ui.close();
      return Promise.all([publish.stop(), consume.stop()]);
    },
  };
}
