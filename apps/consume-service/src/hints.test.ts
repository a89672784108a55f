import { describe, expect, it } from 'vitest';
import { loadConfig } from './config.ts';
import { parseHintEndpoints } from './hints.ts';

describe('change hint endpoints', () => {
  it('parses host:port lists (names, IPv4, bracketed IPv6, dns: prefix) and skips empty entries', () => {
    expect(parseHintEndpoints('publish:7444, 10.0.0.2:7444,[::1]:7444,dns:///quire-publish.quire.svc:7444,')).toEqual([
      { host: 'publish', port: 7444 },
      { host: '10.0.0.2', port: 7444 },
      { host: '::1', port: 7444 },
      { host: 'quire-publish.quire.svc', port: 7444 },
    ]);
    expect(parseHintEndpoints('')).toEqual([]);
  });

  it('refuses an entry without a port, or a port out of range', () => {
    expect(() => parseHintEndpoints('publish')).toThrow('"publish" is not host:port');
    expect(() => parseHintEndpoints('a:1,b:70000')).toThrow('"b:70000" is not host:port');
  });

  it('config: QUIRE_PUBLISH_HINT_ENDPOINTS and QUIRE_PUBLISH_HINT_TOKEN, named when bad, the token never echoed', () => {
    expect(loadConfig({}).publishHintEndpoints).toEqual([]);
    expect(loadConfig({ QUIRE_PUBLISH_HINT_ENDPOINTS: 'a:1, b:2' }).publishHintEndpoints).toEqual(['a:1', 'b:2']);
    expect(() => loadConfig({ QUIRE_PUBLISH_HINT_ENDPOINTS: 'a' })).toThrow(/QUIRE_PUBLISH_HINT_ENDPOINTS/);
    const token = `quire_${'a'.repeat(16)}_${'b'.repeat(43)}`;
    expect(loadConfig({ QUIRE_PUBLISH_HINT_TOKEN: token }).publishHintToken).toBe(token);
    let message = '';
    try {
      loadConfig({ QUIRE_PUBLISH_HINT_TOKEN: 'secret-not-a-token' });
    } catch (err) {
      message = (err as Error).message;
    }
    expect(message).toMatch(/QUIRE_PUBLISH_HINT_TOKEN/);
    expect(message).not.toContain('secret-not-a-token');
  });
});
