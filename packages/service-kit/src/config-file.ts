/**
 * The optional configuration file (`QUIRE_CONFIG_FILE`): a YAML or JSON mapping of the same
 * `QUIRE_*` names the environment uses, e.g.
 *
 * ```yaml
 * QUIRE_METADATA_STORE: cassandra
 * QUIRE_CASSANDRA_CONTACT_POINTS: [cassandra-0.cassandra, cassandra-1.cassandra]
 * QUIRE_CASSANDRA_PORT: 9042
 * QUIRE_S3_REGIONS:
 *   - { name: eu, endpoint: "http://s3:9000", bucket: quire-eu }
 * ```
 *
 * It is parsed with `yaml` (YAML 1.2, of which JSON is a subset; duplicate keys refused)
 * and turned into the strings the environment would hold, so one schema validates both:
 * numbers and booleans become their text, a list becomes a comma-separated string, and a
 * structured `QUIRE_S3_REGIONS` becomes its JSON. A key no Quire app knows, a structured
 * value where none is meant, or a file that cannot be read or parsed is a ConfigError
 * naming the key (or QUIRE_CONFIG_FILE) and the file.
 */
import { readFileSync } from 'node:fs';
import { YAMLParseError, parse } from 'yaml';
import { ConfigError, unknownMessage } from './config-error.ts';

/** Variables whose value may be structured in the file (it is passed on as JSON). */
const JSON_VALUED = new Set(['QUIRE_S3_REGIONS']);

/**
 * Read `path` and return its entries as environment-style strings. `known` lists every
 * variable some Quire app reads; any other key is refused. A `null` value (`KEY:` with
 * nothing after it) is left out, as an empty variable is.
 */
export function readConfigFile(path: string, known: readonly string[]): Record<string, string> {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new ConfigError('QUIRE_CONFIG_FILE', `cannot read ${path} (${code ?? String(err)})`, path);
  }
  let doc: unknown;
  try {
    doc = parse(text, { uniqueKeys: true, prettyErrors: true });
  } catch (err) {
    const detail = err instanceof YAMLParseError ? err.message.split('\n')[0] : String(err);
    throw new ConfigError('QUIRE_CONFIG_FILE', `${path} is not valid YAML or JSON: ${detail}`, path);
  }
  if (doc === null || doc === undefined) return {}; // an empty file
  if (typeof doc !== 'object' || Array.isArray(doc)) {
    throw new ConfigError('QUIRE_CONFIG_FILE', `${path} must hold a mapping of QUIRE_* names to values, not ${Array.isArray(doc) ? 'a list' : `a ${typeof doc}`}`, path);
  }

  const out: Record<string, string> = {};
  for (const [key, value] of Object.entries(doc as Record<string, unknown>)) {
    if (key === 'QUIRE_CONFIG_FILE') throw new ConfigError(key, `cannot be set inside ${path} (only in the environment)`, path);
    if (!known.includes(key)) throw new ConfigError(key, `${unknownMessage(key, [...known], 'key')} (in ${path})`, path);
    if (value === null || value === undefined) continue;
    const text = asText(key, value);
    if (text === undefined) {
      const want = JSON_VALUED.has(key) ? 'a string, a list or a mapping' : 'a string, a number, a boolean or a list of them';
      throw new ConfigError(key, `expected ${want} (in ${path})`, path);
    }
    out[key] = text;
  }
  return out;
}

function asText(key: string, value: unknown): string | undefined {
  if (typeof value === 'string') return value;
  if (typeof value === 'number' || typeof value === 'boolean' || typeof value === 'bigint') return String(value);
  if (JSON_VALUED.has(key) && typeof value === 'object') return JSON.stringify(value);
  if (Array.isArray(value) && value.every((v) => ['string', 'number', 'boolean'].includes(typeof v))) return value.join(',');
  return undefined;
}
