import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from './config.ts';

describe('loadConfig', () => {
  it('applies the defaults', () => {
    const c = loadConfig({});
    expect([c.httpPort, c.grpcPort, c.cacheRefreshMs, c.changePollMs, c.metadataStore.kind, c.blobStore.kind]).toEqual([7081, 7443, 5000, 150, 'embedded', 'fs']);
  });
  it("accepts the publish service's own variables in a shared environment", () => {
    expect(loadConfig({ QUIRE_PUBLISH_HTTP_PORT: '7080', QUIRE_CONSUME_HTTP_PORT: '0' }).httpPort).toBe(0);
  });
  it('refuses a malformed or unknown variable, naming it', () => {
    expect(() => loadConfig({ QUIRE_CACHE_REFRESH_MS: 'soon' })).toThrow(ConfigError);
    expect(() => loadConfig({ QUIRE_CACHE_REFRESH_MS: 'soon' })).toThrow(/^QUIRE_CACHE_REFRESH_MS: /);
    expect(() => loadConfig({ QUIRE_CONSUME_PORT: '1' })).toThrow(/^QUIRE_CONSUME_PORT: unknown variable/);
  });
});
