/**
 * JSON Schemas of what the REST APIs answer: the domain records of `@quire/core` as they
 * travel in JSON. Routes use them as response schemas, which does three things: fastify
 * serializes the answer through them, `@fastify/response-validation` checks every
 * answer against them first (a field missing from a schema is a 500 naming it, never
 * silently dropped: every object here is closed with `additionalProperties: false`),
 * and the OpenAPI document (/docs) describes the answers with them.
 *
 * Keep them in step with `packages/core/src/model.ts`: the route-walk tests of both
 * services (`openapi.int.test.ts`) fail on any field a schema does not list.
 */
import { ENCRYPTION_ALGORITHMS, ROLES } from '@quire/core';

const str = { type: 'string' } as const;
const int = { type: 'integer' } as const;
const bool = { type: 'boolean' } as const;
const stringMap = { type: 'object', additionalProperties: str } as const;

/** An object schema whose `required` fields are always present and the others optional; nothing else. */
function obj<P extends Record<string, unknown>>(properties: P, required: ReadonlyArray<keyof P & string>, description?: string) {
  return { type: 'object', additionalProperties: false, required: [...required], properties, ...(description === undefined ? {} : { description }) } as const;
}

export const scopeSchema = { ...stringMap, description: 'Consumer attributes a release or pin applies to; {} is global' } as const;

export const retentionSchema = obj({ keepLast: int, maxAgeMs: int }, []);

export const rolloutPlanSchema = obj(
  {
    stages: { type: 'array', items: obj({ name: str, scope: scopeSchema, bakeMs: int }, ['scope', 'bakeMs']) },
    health: obj({ maxFailureRatio: { type: 'number' }, minInstances: int, action: { type: 'string', enum: ['pause', 'rollback'] } }, [
      'maxFailureRatio',
      'minInstances',
      'action',
    ]),
  },
  ['stages'],
);

const topicProperties = {
  name: str,
  owner: str,
  description: str,
  retention: retentionSchema,
  inlineThresholdBytes: int,
  rolloutPlan: rolloutPlanSchema,
  jsonSchema: { type: 'string', description: 'JSON Schema (as JSON text) JSON payloads must satisfy' },
  allowedApplications: { type: 'array', items: str },
  encryption: obj({ algorithm: { type: 'string', enum: [...ENCRYPTION_ALGORITHMS] }, keyId: str }, ['algorithm', 'keyId'], 'Payload encryption (envelope, a data key per version)'),
  createdAt: int,
  updatedAt: int,
  revision: int,
} as const;
const topicRequired = ['name', 'owner', 'description', 'retention', 'inlineThresholdBytes', 'createdAt', 'updatedAt', 'revision'] as const;

/** A topic as the publish service shows it: its settings and the number of its newest version. */
export const topicSchema = obj({ ...topicProperties, headVersion: int }, [...topicRequired, 'headVersion'], 'A topic');

export const blobLocationSchema = obj({ region: str, bucket: str, key: str }, ['region', 'bucket', 'key']);

export const pointerSchema = {
  description: 'Where the payload lives: inline in the metadata store, or S3 objects (one per region)',
  anyOf: [
    obj({ kind: { type: 'string', enum: ['inline'] }, blobId: str }, ['kind', 'blobId']),
    obj({ kind: { type: 'string', enum: ['s3'] }, locations: { type: 'array', items: blobLocationSchema } }, ['kind', 'locations']),
  ],
} as const;

const versionProperties = {
  topic: str,
  version: int,
  publishId: str,
  createdAt: int,
  publisher: str,
  metadata: stringMap,
  contentType: str,
  size: int,
  sha256: str,
  pointer: pointerSchema,
  deletedAt: int,
} as const;
const versionRequired = ['topic', 'version', 'publishId', 'createdAt', 'publisher', 'metadata', 'contentType', 'size', 'sha256', 'pointer'] as const;

/** A version's descriptor (never its bytes). */
export const versionSchema = obj(versionProperties, versionRequired, 'A version: its descriptor, not its bytes');

/** A version with the scopes it applies to (the consume service's view). */
export const versionViewSchema = obj({ ...versionProperties, scopes: { type: 'array', items: scopeSchema } }, [...versionRequired, 'scopes']);

export const releaseSchema = obj(
  { topic: str, version: int, scope: scopeSchema, scopeKey: str, releasedAt: int, releasedBy: str, runId: str, withdrawnAt: int },
  ['topic', 'version', 'scope', 'scopeKey', 'releasedAt', 'releasedBy'],
);

export const pinSchema = obj(
  { topic: str, pinId: str, scope: scopeSchema, scopeKey: str, version: int, reason: str, pinnedBy: str, pinnedAt: int, unpinnedAt: int, unpinnedBy: str },
  ['topic', 'pinId', 'scope', 'scopeKey', 'version', 'reason', 'pinnedBy', 'pinnedAt'],
);

export const rolloutRunSchema = obj(
  {
    topic: str,
    runId: str,
    version: int,
    plan: rolloutPlanSchema,
    status: { type: 'string', enum: ['running', 'paused', 'completed', 'aborted', 'rolled_back'] },
    stageIndex: int,
    stageReleasedAt: int,
    pausedAt: int,
    reason: str,
    createdAt: int,
    updatedAt: int,
    startedBy: str,
    epoch: { type: 'integer', description: 'Lease epoch of the scheduler that last moved the run (fencing)' },
    revision: int,
    nextStageAt: { type: 'integer', description: 'When the next stage is due (running runs)' },
  },
  ['topic', 'runId', 'version', 'plan', 'status', 'stageIndex', 'stageReleasedAt', 'createdAt', 'updatedAt', 'startedBy', 'revision'],
);

export const auditEntrySchema = obj(
  { id: str, at: int, actor: str, action: str, topic: str, reason: str, details: { type: 'object', additionalProperties: true } },
  ['id', 'at', 'actor', 'action', 'details'],
);

export const publishResultSchema = obj(
  { version: versionSchema, releases: { type: 'array', items: releaseSchema }, replayed: bool, rollout: rolloutRunSchema },
  ['version', 'releases', 'replayed'],
  'The version published (or, for a publishId already committed, the one it made) and its releases',
);

/** A consumer instance's report of the version it runs (or failed to apply) of a topic. */
export const fleetReportSchema = obj(
  {
    topic: str,
    instance: str,
    identity: { ...stringMap, description: "The instance's identity (region, application, cluster, instance, attributes)" },
    version: { type: 'integer', description: 'The version it runs (0 = none yet)' },
    failedVersion: { type: 'integer', description: 'The version it last failed to apply' },
    error: str,
    reportedAt: int,
  },
  ['topic', 'instance', 'identity', 'version', 'reportedAt'],
);

/** An API token as the token API shows it: never its secret or the secret's hash. */
export const apiTokenSchema = obj(
  {
    id: str,
    name: str,
    role: { type: 'string', enum: [...ROLES] },
    prefixes: { type: 'array', items: str, description: 'Topic prefixes it covers; empty = every topic' },
    application: { type: 'string', description: 'Consumer tokens: the application it may poll as' },
    createdAt: int,
    createdBy: str,
    expiresAt: { type: 'integer', description: 'When it stops working (ms since the epoch); absent = never' },
    revokedAt: int,
    revokedBy: str,
  },
  ['id', 'name', 'role', 'prefixes', 'createdAt', 'createdBy'],
  'An API token (without its secret)',
);

/** `{ <key>: [items], next? }`: a page of a list. */
export function pageSchema(key: string, items: unknown, nextKey = 'next') {
  return obj({ [key]: { type: 'array', items }, [nextKey]: { type: 'string', description: 'Cursor of the next page; absent on the last' } }, [key]);
}

/** `{ <key>: item }`. */
export function wrapSchema(key: string, item: unknown, required = true) {
  return obj({ [key]: item }, required ? [key] : []);
}

/** Raw bytes (a version's payload), in the version's own content type. */
export const bytesResponse = {
  description: "The payload, in the version's content type",
  content: { 'application/octet-stream': { schema: { type: 'string', format: 'binary' } } },
} as const;

export { obj as objectSchema };
