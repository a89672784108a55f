/**
 * `ListTopics` over the publish service's gRPC API. @quire/client's Publisher has no
 * `listTopics` yet; this is the one place the CLI speaks proto itself, and it goes away
 * when the SDK gains the call. The topics are mapped by the SDK's own `topicFromPb`.
 */
import * as grpc from '@grpc/grpc-js';
import { ACTOR_METADATA, fromGrpcError, tokenClientOptions, topicFromPb, type TopicInfo } from '@quire/client';
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
    return { topics: res.topics.map(topicFromPb), ...(res.nextCursor === '' ? {} : { next: res.nextCursor }) };
  } finally {
    client.close();
  }
}
