/**
 * `ListTopics` over the publish service's gRPC API. @quire/client's Publisher has no
 * `listTopics` yet; this is the one place the CLI speaks proto itself, and it goes away
 * when the SDK gains the call (same request, same mapping as the SDK's `topicFromPb`).
 */
import * as grpc from '@grpc/grpc-js';
import { ACTOR_METADATA, fromGrpcError, tokenClientOptions, type TopicInfo } from '@quire/client';
import { loadQuireProto, type PbTopicOutput, type PublishServiceClient } from '@quire/proto';

export interface ListTopicsOptions {
  endpoint: string;
  actor?: string;
  token?: string;
  limit?: number;
  cursor?: string;
  prefix?: string;
  timeoutMs?: number;
}

const num = (v: string | number | null | undefined): number => (v === null || v === undefined || v === '' ? 0 : Number(v));

function topicOf(t: PbTopicOutput): TopicInfo {
  const retention: TopicInfo['retention'] = {};
  if (t.retention !== null && t.retention.keepLast > 0) retention.keepLast = t.retention.keepLast;
  if (t.retention !== null && num(t.retention.maxAgeMs) > 0) retention.maxAgeMs = num(t.retention.maxAgeMs);
  return {
    name: t.name,
    owner: t.owner,
    description: t.description,
    inlineThresholdBytes: num(t.inlineThresholdBytes),
    retention,
    allowedApplications: [...t.allowedApplications],
    createdAt: num(t.createdAt),
    updatedAt: num(t.updatedAt),
    revision: num(t.revision),
    headVersion: num(t.headVersion),
  };
}

export async function listTopics(o: ListTopicsOptions): Promise<{ topics: TopicInfo[]; next?: string }> {
  const Ctor = loadQuireProto().quire.v1.PublishService;
  const client: PublishServiceClient = new Ctor(o.endpoint, grpc.credentials.createInsecure(), tokenClientOptions(o.token));
  const md = new grpc.Metadata();
  if (o.actor !== undefined && o.actor !== '') md.set(ACTOR_METADATA, o.actor);
  try {
    const res = await new Promise<{ topics: PbTopicOutput[]; nextCursor: string }>((resolve, reject) => {
      client.ListTopics(
        { limit: o.limit ?? 0, cursor: o.cursor ?? '', prefix: o.prefix ?? '' },
        md,
        { deadline: Date.now() + (o.timeoutMs ?? 30_000) },
        (err, r) => (err || r === undefined ? reject(fromGrpcError(err)) : resolve(r)),
      );
    });
    return { topics: res.topics.map(topicOf), ...(res.nextCursor === '' ? {} : { next: res.nextCursor }) };
  } finally {
    client.close();
  }
}
