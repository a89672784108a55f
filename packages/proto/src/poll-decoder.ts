/**
 * A leaner decoder for `PollResponse` (the answers of `Poll` and `PollStream`), the message
 * a long-poll consumer decodes most: protobufjs's own reflection decoder (`Type.decode`,
 * generated code, the same proto-loader runs) from the same .proto files, then a direct
 * mapping to the object proto-loader would give with `LOADER_OPTIONS` (longs as decimal
 * strings, defaults filled in, the oneof's name set). proto-loader's deserializer runs the
 * generic `toObject` instead, which walks every field under its options and turns each
 * int64 into a string through `Long.prototype.toString`; a process running 500 consumers
 * decodes 500 answers per publish. `poll-decoder.test.ts` checks both give deep-equal
 * objects; any other message still goes through proto-loader.
 */
import { join } from 'node:path';
import protobuf from 'protobufjs';
import type { PollResponse__Output } from './gen/quire/v1/PollResponse.ts';
import type { TopicStatus__Output } from './gen/quire/v1/TopicStatus.ts';
import type { TopicUpdate__Output } from './gen/quire/v1/TopicUpdate.ts';
import type { VersionDescriptor__Output } from './gen/quire/v1/VersionDescriptor.ts';

/** An int64 as protobufjs decodes it: a `Long` (when the `long` package is there, as it is with protobufjs 7) or a number. */
type Int64 = number | protobuf.Long;

interface DecodedDescriptor {
  topic: string;
  version: Int64;
  publishId: string;
  createdAt: Int64;
  publisher: string;
  metadata: Record<string, string>;
  contentType: string;
  size: Int64;
  sha256: string;
  inline?: { blobId: string } | null;
  s3?: { locations: Array<{ region: string; bucket: string; key: string }> } | null;
  deletedAt: Int64;
  scopes: Array<{ attributes: Record<string, string> }>;
  pointer?: 'inline' | 's3';
}

interface DecodedUpdate {
  topic: string;
  version?: DecodedDescriptor | null;
  inlineData: Uint8Array | readonly number[];
  via: string;
}

interface DecodedResponse {
  updates: DecodedUpdate[];
  errors: Array<{ topic: string; errorCode: string; errorMessage: string }>;
  nextPollMs: number;
  stale: boolean;
}

const TWO_32 = 4294967296;

/** int64 → decimal string, as proto-loader's `longs: String` writes it. */
function int64String(v: Int64): string {
  if (typeof v === 'number') return String(v);
  const n = v.high * TWO_32 + (v.low >>> 0);
  return Number.isSafeInteger(n) ? String(n) : v.toString();
}

/**
 * Bytes as proto-loader gives them: the decoded Buffer itself (protobufjs decodes to Buffer
 * slices under Node), or an empty Buffer when the field is absent (the prototype's default
 * is an empty array).
 */
function bytes(b: Uint8Array | readonly number[]): Buffer {
  if (Buffer.isBuffer(b)) return b;
  return b instanceof Uint8Array ? Buffer.from(b.buffer, b.byteOffset, b.byteLength) : Buffer.alloc(0);
}

function stringMap(m: Record<string, string>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const k of Object.keys(m)) out[k] = m[k] as string;
  return out;
}

function descriptorOut(d: DecodedDescriptor): VersionDescriptor__Output {
  const out: VersionDescriptor__Output = {
    topic: d.topic,
    version: int64String(d.version),
    publishId: d.publishId,
    createdAt: int64String(d.createdAt),
    publisher: d.publisher,
    metadata: stringMap(d.metadata),
    contentType: d.contentType,
    size: int64String(d.size),
    sha256: d.sha256,
    deletedAt: int64String(d.deletedAt),
    scopes: d.scopes.map((s) => ({ attributes: stringMap(s.attributes) })),
  };
  // The oneof: only its set member is present, and `pointer` names it (proto-loader's `oneofs: true`).
  if (d.inline !== undefined && d.inline !== null) {
    out.inline = { blobId: d.inline.blobId };
    out.pointer = 'inline';
  } else if (d.s3 !== undefined && d.s3 !== null) {
    out.s3 = { locations: d.s3.locations.map((l) => ({ region: l.region, bucket: l.bucket, key: l.key })) };
    out.pointer = 's3';
  }
  return out;
}

function updateOut(u: DecodedUpdate): TopicUpdate__Output {
  return {
    topic: u.topic,
    version: u.version === undefined || u.version === null ? null : descriptorOut(u.version),
    inlineData: bytes(u.inlineData),
    via: u.via,
  };
}

function statusOut(e: DecodedResponse['errors'][number]): TopicStatus__Output {
  return { topic: e.topic, errorCode: e.errorCode, errorMessage: e.errorMessage };
}

/**
 * The `PollResponse` deserializer for a gRPC method definition: wire bytes → the object
 * proto-loader would give. `protoRoot` is the folder holding `quire/v1/*.proto`.
 */
export function createPollResponseDecoder(protoRoot: string): (buf: Buffer) => PollResponse__Output {
  const root = new protobuf.Root();
  root.resolvePath = (_origin, target) => join(protoRoot, target);
  root.loadSync('quire/v1/consume.proto', { keepCase: false });
  root.resolveAll();
  const type = root.lookupType('quire.v1.PollResponse');
  return (buf) => {
    // Decoded fields are set on the message or inherited from its prototype's defaults.
    const m = type.decode(buf) as unknown as DecodedResponse;
    return {
      updates: m.updates.map(updateOut),
      errors: m.errors.map(statusOut),
      nextPollMs: m.nextPollMs,
      stale: m.stale,
    };
  };
}
