import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { ConfigError, configLoader, knownVariables, portSchema } from './config.ts';
import { readConfigFile } from './config-file.ts';

const dir = mkdtempSync(join(tmpdir(), 'quire-config-file-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

let n = 0;
function file(text: string, ext = 'yaml'): string {
  const path = join(dir, `quire-${++n}.${ext}`);
  writeFileSync(path, text);
  return path;
}

// A loader built like the consume service's.
const load = configLoader(
  'consume-service',
  {
    QUIRE_CONSUME_HTTP_PORT: portSchema.default(7081),
    QUIRE_CONSUME_GRPC_PORT: portSchema.default(7443),
    QUIRE_CACHE_REFRESH_MS: z.coerce.number().int().min(100).default(5000),
    QUIRE_CHANGE_POLL_MS: z.coerce.number().int().default(150),
    QUIRE_FLEET_FLUSH_MS: z.coerce.number().int().default(5000),
    QUIRE_POLL_CONCURRENCY_PER_APP: z.coerce.number().int().default(32),
    QUIRE_POLL_QUEUE_PER_APP: z.coerce.number().int().default(2000),
    QUIRE_HELD_POLLS_PER_APP: z.coerce.number().int().default(50000),
    QUIRE_READY_MAX_CACHE_AGE_MS: z.coerce.number().int().default(300_000),
    QUIRE_PUBLISH_HINT_ENDPOINTS: z.string().default(''),
    QUIRE_PUBLISH_HINT_TOKEN: z.string().optional(),
  },
  (shared, own) => ({ ...shared, httpPort: own.QUIRE_CONSUME_HTTP_PORT, cacheRefreshMs: own.QUIRE_CACHE_REFRESH_MS }),
);

function error(env: Record<string, string>): ConfigError {
  try {
    load(env);
  } catch (err) {
    if (err instanceof ConfigError) return err;
    throw err;
  }
  throw new Error('expected a ConfigError');
}

describe('QUIRE_CONFIG_FILE', () => {
  it('reads the same keys from YAML, typed values becoming the text the environment would hold', () => {
    const path = file(
      [
        'QUIRE_METADATA_STORE: cassandra',
        'QUIRE_CASSANDRA_CONTACT_POINTS: [cass-0, cass-1]',
        'QUIRE_CASSANDRA_PORT: 9043',
        'QUIRE_CONSUME_HTTP_PORT: 8081',
        'QUIRE_S3_REGIONS:',
        '  - { name: eu, endpoint: "http://s3:9000", bucket: quire-eu }',
        'QUIRE_LOG_LEVEL:          # empty: as unset, the default applies',
        '',
      ].join('\n'),
    );
    const c = load({ QUIRE_CONFIG_FILE: path });
    expect(c.metadataStore).toEqual({ kind: 'cassandra', contactPoints: ['cass-0', 'cass-1'], port: 9043, localDataCenter: 'datacenter1', keyspace: 'quire', replicationFactor: 3 });
    expect(c.blobStore).toEqual({ kind: 's3', regions: [{ name: 'eu', endpoint: 'http://s3:9000', bucket: 'quire-eu' }] });
    expect(c.httpPort).toBe(8081);
    expect(c.logLevel).toBe('info');
  });

  it('reads JSON', () => {
    const path = file(JSON.stringify({ QUIRE_CONSUME_HTTP_PORT: 9001, QUIRE_HOST: '0.0.0.0' }), 'json');
    expect(load({ QUIRE_CONFIG_FILE: path })).toMatchObject({ httpPort: 9001, host: '0.0.0.0' });
  });

  it('is overridden by the environment; an empty variable leaves the file value', () => {
    const path = file('QUIRE_CONSUME_HTTP_PORT: 8081\nQUIRE_CACHE_REFRESH_MS: 700\nQUIRE_HOST: 0.0.0.0\n');
    expect(load({ QUIRE_CONFIG_FILE: path, QUIRE_CONSUME_HTTP_PORT: '9090', QUIRE_HOST: '' })).toMatchObject({ httpPort: 9090, cacheRefreshMs: 700, host: '0.0.0.0' });
    // A bad file value the environment overrides is never used, so it is not an error.
    const bad = file('QUIRE_CONSUME_HTTP_PORT: eighty\n');
    expect(load({ QUIRE_CONFIG_FILE: bad, QUIRE_CONSUME_HTTP_PORT: '80' }).httpPort).toBe(80);
  });

  it("ignores another Quire app's keys (one file for every app)", () => {
    const path = file('QUIRE_PUBLISH_HTTP_PORT: 7080\nQUIRE_ACTOR: ci\nQUIRE_CONSUME_HTTP_PORT: 7081\n');
    expect(load({ QUIRE_CONFIG_FILE: path }).httpPort).toBe(7081);
  });

  it('refuses a wrong value, naming the key, the value and the file', () => {
    const path = file('QUIRE_CASSANDRA_PORT: ninety\n');
    const err = error({ QUIRE_CONFIG_FILE: path });
    expect(err.variable).toBe('QUIRE_CASSANDRA_PORT');
    expect(err.file).toBe(path);
    expect(err.message).toMatch(new RegExp(`^QUIRE_CASSANDRA_PORT: .*\\(got "ninety" in ${path}\\)$`));
    expect(error({ QUIRE_CONFIG_FILE: file('QUIRE_CACHE_REFRESH_MS: 5\n') }).message).toMatch(/^QUIRE_CACHE_REFRESH_MS: .*\(got "5" in .*quire-\d+\.yaml\)$/);
    // Refused after the schema (the regions' JSON): still names the file.
    const regions = error({ QUIRE_CONFIG_FILE: file('QUIRE_S3_REGIONS: [{ name: eu, bucket: "B!" }]\n') });
    expect(regions.message).toMatch(/^QUIRE_S3_REGIONS: \[0\]\.bucket: .* \(set in .*quire-\d+\.yaml\)$/);
    expect(regions.file).toMatch(/quire-\d+\.yaml$/);
  });

  it('the same wrong value from the environment does not name the file', () => {
    const err = error({ QUIRE_CONFIG_FILE: file('QUIRE_HOST: 0.0.0.0\n'), QUIRE_CASSANDRA_PORT: 'ninety' });
    expect(err.file).toBeUndefined();
    expect(err.message).toMatch(/\(got "ninety"\)$/);
  });

  it('refuses an unknown key, suggesting the closest known name and naming the file', () => {
    const path = file('QUIRE_CONSUME_HTTP_PORT: 1\nQUIRE_CASANDRA_PORT: 9042\n');
    const err = error({ QUIRE_CONFIG_FILE: path });
    expect(err.variable).toBe('QUIRE_CASANDRA_PORT');
    expect(err.message).toMatch(/^QUIRE_CASANDRA_PORT: unknown key; did you mean QUIRE_CASSANDRA_PORT\?/);
    expect(err.message).toContain(`(in ${path})`);
    expect(error({ QUIRE_CONFIG_FILE: file('port: 1\n') }).variable).toBe('port');
    expect(error({ QUIRE_CONFIG_FILE: file('QUIRE_CONFIG_FILE: other.yaml\n') }).message).toMatch(/cannot be set inside/);
  });

  it('refuses a structured value where a scalar is meant', () => {
    const err = error({ QUIRE_CONFIG_FILE: file('QUIRE_HOST: { a: 1 }\n') });
    expect(err.variable).toBe('QUIRE_HOST');
    expect(err.message).toMatch(/expected a string, a number, a boolean or a list of them \(in .*\)$/);
  });

  it('refuses a missing, unparsable or non-mapping file, naming QUIRE_CONFIG_FILE and the file', () => {
    const missing = error({ QUIRE_CONFIG_FILE: join(dir, 'nope.yaml') });
    expect(missing.variable).toBe('QUIRE_CONFIG_FILE');
    expect(missing.message).toMatch(/cannot read .*nope\.yaml \(ENOENT\)/);
    const broken = error({ QUIRE_CONFIG_FILE: file('QUIRE_HOST: [unclosed\n') });
    expect(broken.variable).toBe('QUIRE_CONFIG_FILE');
    expect(broken.message).toMatch(/quire-\d+\.yaml is not valid YAML or JSON: /);
    expect(error({ QUIRE_CONFIG_FILE: file('QUIRE_HOST: a\nQUIRE_HOST: b\n') }).message).toMatch(/not valid YAML or JSON: .*[Uu]nique/);
    expect(error({ QUIRE_CONFIG_FILE: file('- QUIRE_HOST\n') }).message).toMatch(/must hold a mapping of QUIRE_\* names to values, not a list/);
  });

  it('an empty file changes nothing', () => {
    expect(readConfigFile(file(''), knownVariables())).toEqual({});
    expect(load({ QUIRE_CONFIG_FILE: file('# nothing yet\n') }).httpPort).toBe(7081);
  });
});
