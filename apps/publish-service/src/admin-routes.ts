/**
 * Read routes for the admin UI (a fastify plugin function): summaries that would take the
 * UI many calls per row otherwise. Read-only; errors go through the app's error handler.
 *
 * - `GET /v1/admin/topics?prefix=` → `{topics}`: every topic with its head version, last
 *   publish time, active pins and active rollout run (ordered by name)
 * - `GET /v1/admin/topics/:topic` → `{topic, pins, pinHistory, releases, runs, rollback}`:
 *   `releases` include withdrawn ones; `rollback` is what a global "roll back" would pin now
 *   (`{current, target}`), or why there is nothing to roll back to (`{refused}`)
 * - `GET /v1/admin/topics/:topic/fleet?since=` → `{now, since, reports}`: the topic's
 *   fleet reports received at or after `since` (ms; default: the last 10 minutes)
 */
import type { FastifyInstance } from 'fastify';
import { QuireError, describeScope, isActiveRun, rollbackTarget } from '@quire/core';
import type { Clock, MetadataStore, Pin, RolloutRun, Topic } from '@quire/core';
import { fleetReportSchema, objectSchema, pinSchema, releaseSchema, rolloutRunSchema, topicSchema, wrapSchema } from '@quire/service-kit';
import { runView } from './rollout-routes.ts';

export interface AdminRouteDeps {
  store: MetadataStore;
  clock: Clock;
}

/** Fleet reports older than this are left out by default (instances that stopped reporting). */
export const FLEET_WINDOW_MS = 10 * 60_000;

export interface TopicSummary {
  name: string;
  owner: string;
  description: string;
  headVersion: number;
  lastPublishAt?: number;
  pins: Pin[];
  activeRun?: RolloutRun & { nextStageAt?: number };
  hasRolloutPlan: boolean;
  updatedAt: number;
}

const str = { type: 'string' } as const;
const intLike = { type: 'string', pattern: '^[0-9]+$' } as const;
const int = { type: 'integer' } as const;
const topicParams = { type: 'object', required: ['topic'], properties: { topic: str } } as const;
const pins = { type: 'array', items: pinSchema } as const;

// Response schemas (answers are validated against them: see @quire/service-kit's schemas.ts).
const topicSummarySchema = objectSchema(
  {
    name: str,
    owner: str,
    description: str,
    headVersion: { type: 'integer', description: 'The newest version (0 = none yet)' },
    lastPublishAt: { type: 'integer', description: 'When the newest version was published' },
    pins: { ...pins, description: 'Active pins' },
    activeRun: { ...rolloutRunSchema, description: 'The running or paused rollout run' },
    hasRolloutPlan: { type: 'boolean' },
    updatedAt: int,
  },
  ['name', 'owner', 'description', 'headVersion', 'pins', 'hasRolloutPlan', 'updatedAt'],
);
const topicDetailSchema = objectSchema(
  {
    topic: topicSchema,
    pins: { ...pins, description: 'Active pins' },
    pinHistory: { ...pins, description: 'Every pin, unpinned ones included' },
    releases: { type: 'array', items: releaseSchema, description: 'Every release, withdrawn ones included' },
    runs: { type: 'array', items: rolloutRunSchema },
    rollback: {
      description: 'What a global roll back would pin now, or why there is nothing to roll back to',
      anyOf: [objectSchema({ current: int, target: int }, ['current', 'target']), objectSchema({ refused: str }, ['refused'])],
    },
  },
  ['topic', 'pins', 'pinHistory', 'releases', 'runs', 'rollback'],
);
const fleetSchema = objectSchema(
  {
    now: { type: 'integer', description: "The server's time" },
    since: { type: 'integer', description: 'Reports received at or after this time' },
    reports: { type: 'array', items: fleetReportSchema },
  },
  ['now', 'since', 'reports'],
);

export async function registerAdminRoutes(app: FastifyInstance, deps: AdminRouteDeps): Promise<void> {
  const { store, clock } = deps;

  const requireTopic = async (name: string): Promise<Topic> => {
    const topic = await store.getTopic(name);
    if (topic === undefined) throw QuireError.notFound(`topic ${name}`, 'topic');
    return topic;
  };

  const summary = async (t: Topic): Promise<TopicSummary> => {
    const [latest, pins, runs] = await Promise.all([store.listVersions(t.name, { limit: 1, order: 'desc' }), store.listPins(t.name), store.listRuns(t.name)]);
    const head = latest.items[0];
    const active = runs.find(isActiveRun);
    return {
      name: t.name,
      owner: t.owner,
      description: t.description,
      headVersion: head?.version ?? 0,
      ...(head === undefined ? {} : { lastPublishAt: head.createdAt }),
      pins: pins.filter((p) => p.unpinnedAt === undefined),
      ...(active === undefined ? {} : { activeRun: runView(active) }),
      hasRolloutPlan: t.rolloutPlan !== undefined,
      updatedAt: t.updatedAt,
    };
  };

  app.get<{ Querystring: { prefix?: string } }>(
    '/v1/admin/topics',
    {
      schema: {
        summary: "Every topic with its head version, last publish, active pins and active rollout (the admin UI's list)",
        querystring: { type: 'object', additionalProperties: false, properties: { prefix: str } },
        response: { 200: wrapSchema('topics', { type: 'array', items: topicSummarySchema }) },
      },
    },
    async (req) => {
      const topics: Topic[] = [];
      let cursor: string | undefined;
      do {
        const page = await store.listTopics(cursor === undefined ? { limit: 500 } : { limit: 500, cursor });
        topics.push(...page.items);
        cursor = page.next;
      } while (cursor !== undefined);
      const prefix = req.query.prefix;
      const chosen = prefix === undefined ? topics : topics.filter((t) => t.name.startsWith(prefix));
      return { topics: await Promise.all(chosen.map(summary)) };
    },
  );

  const detail = { summary: "A topic with its pins, releases, rollout runs and roll-back target (the admin UI's topic page)", params: topicParams, response: { 200: topicDetailSchema } };
  app.get<{ Params: { topic: string } }>('/v1/admin/topics/:topic', { schema: detail }, async (req) => {
    const topic = await requireTopic(req.params.topic);
    const [head, releases, pins, runs] = await Promise.all([
      store.headVersion(topic.name),
      store.listReleases(topic.name),
      store.listPins(topic.name),
      store.listRuns(topic.name),
    ]);
    // Deleted versions matter to the rollback decision; only they are read here.
    const deleted = new Map<number, number>();
    let cursor: string | undefined;
    do {
      const page = await store.listVersions(topic.name, cursor === undefined ? { limit: 500 } : { limit: 500, cursor });
      for (const v of page.items) if (v.deletedAt !== undefined) deleted.set(v.version, v.deletedAt);
      cursor = page.next;
    } while (cursor !== undefined);
    const decision = rollbackTarget({ releases, pins, deleted }, {}, runs);
    const rollback = decision.ok
      ? { current: decision.decision.current, target: decision.decision.target }
      : {
          refused:
            decision.refusal.reason === 'no-current'
              ? 'no version applies to the whole fleet yet; nothing to roll back'
              : `no version before ${decision.refusal.current} was fully rolled out to ${decision.refusal.required.map(describeScope).join('; ')}`,
        };
    return {
      topic: { ...topic, headVersion: head },
      pins: pins.filter((p) => p.unpinnedAt === undefined),
      pinHistory: pins,
      releases,
      runs: runs.map(runView),
      rollback,
    };
  });

  app.get<{ Params: { topic: string }; Querystring: { since?: string } }>(
    '/v1/admin/topics/:topic/fleet',
    {
      schema: {
        summary: "The topic's fleet reports received since a time (default: the last 10 minutes)",
        params: topicParams,
        querystring: { type: 'object', additionalProperties: false, properties: { since: intLike } },
        response: { 200: fleetSchema },
      },
    },
    async (req) => {
      const topic = await requireTopic(req.params.topic);
      const now = clock.now();
      const since = req.query.since === undefined ? now - FLEET_WINDOW_MS : Number(req.query.since);
      if (!Number.isSafeInteger(since)) throw QuireError.invalid('since', 'must be milliseconds since the epoch');
      const reports = await store.listFleetReports(topic.name, since);
      return { now, since, reports };
    },
  );
}
