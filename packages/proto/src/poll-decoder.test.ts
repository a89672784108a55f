// The lean PollResponse decoder (poll-decoder.ts) gives exactly the object proto-loader's
// deserializer gives, on answers covering every field the SDK reads: inline and S3
// versions, several updates, empty answers, refused topics, int64 edge values, maps.
import * as protoLoader from '@grpc/proto-loader';
import { describe, expect, it } from 'vitest';
import { LOADER_OPTIONS, PROTO_ROOT, decodePollResponse, loadQuireProto } from './index.ts';
import type { PbPollResponse } from './index.ts';
import { createPollResponseDecoder } from './poll-decoder.ts';

/** proto-loader's own method definition (not the one loadQuireProto patches). */
const plain = (protoLoader.loadSync(['quire/v1/consume.proto'], LOADER_OPTIONS)['quire.v1.ConsumeService'] as protoLoader.ServiceDefinition)['PollStream'] as protoLoader.MethodDefinition<unknown, unknown>;
const lean = createPollResponseDecoder(PROTO_ROOT);

const descriptor = (version: string, extra: Record<string, unknown> = {}): Record<string, unknown> => ({
  topic: 'devices.supported',
  version,
  publishId: `pub-${version}`,
  createdAt: '1764000000123',
  publisher: 'ci@example.com',
  metadata: { build: '1234', 'git.sha': 'abc' },
  contentType: 'application/json',
  size: '5',
  sha256: 'a'.repeat(64),
  inline: { blobId: `blob-${version}` },
  deletedAt: '0',
  scopes: [{ attributes: { region: 'eu-west-1', cluster: 'c1' } }, { attributes: {} }],
  ...extra,
});

const answers: Array<[string, PbPollResponse]> = [
  ['an empty answer (nothing new)', {}],
  ['an empty stale answer with a suggested wait', { nextPollMs: 2500, stale: true }],
  ['one inline update with its bytes', { updates: [{ topic: 'devices.supported', version: descriptor('42'), inlineData: Buffer.from('hello'), via: 'release' }] }],
  [
    'an S3 version (no inline bytes), pinned',
    {
      updates: [
        {
          topic: 'big.model',
          version: { ...descriptor('7', { topic: 'big.model', size: '10485760', inline: undefined, s3: { locations: [{ region: 'region-a', bucket: 'b-a', key: 'k/7' }, { region: 'region-b', bucket: 'b-b', key: 'k/7' }] } }) },
          via: 'pin',
        },
      ],
    },
  ],
  [
    'several updates and refused topics',
    {
      updates: [
        { topic: 't1', version: descriptor('1', { topic: 't1' }), inlineData: Buffer.alloc(1024, 7), via: 'release' },
        { topic: 't2', version: descriptor('2', { topic: 't2', metadata: {}, scopes: [] }), inlineData: Buffer.alloc(0), via: 'release' },
        { topic: 't3', version: descriptor('3', { topic: 't3', deletedAt: '1764000000999' }), via: 'release' },
      ],
      errors: [
        { topic: 'nope', errorCode: 'NOT_FOUND', errorMessage: 'unknown topic nope' },
        { topic: 'secret', errorCode: 'PERMISSION_DENIED', errorMessage: 'not allowed' },
      ],
    },
  ],
  ['only errors', { errors: [{ topic: 'nope', errorCode: 'NOT_FOUND' }] }],
  [
    'int64 edge values (above 2^32, above 2^53, negative, maximum)',
    {
      updates: [
        { topic: 'a', version: descriptor('4294967296', { size: '9007199254740993', createdAt: '-1', deletedAt: '9223372036854775807' }), via: 'release' },
        { topic: 'b', version: descriptor('4294967295', { size: '9007199254740991', createdAt: '-9223372036854775808', deletedAt: '2147483648' }), via: 'release' },
      ],
    },
  ],
  ['an update without a descriptor and a descriptor without a pointer', { updates: [{ topic: 'x' }, { topic: 'y', version: descriptor('9', { inline: undefined }) }] }],
  ['unicode strings', { updates: [{ topic: 'unicode', version: descriptor('5', { publisher: 'zoë 🚀', metadata: { 'clé': 'välue ✓' } }), via: 'release' }] }],
];

describe('lean PollResponse decoder', () => {
  it.each(answers)('gives the same object as proto-loader: %s', (_name, answer) => {
    const wire = plain.responseSerialize(answer);
    const expected = plain.responseDeserialize(wire);
    const got = lean(wire);
    expect(got).toStrictEqual(expected);
    // Bytes stay Buffers (the SDK reads .buffer / .byteOffset).
    for (const u of (got as { updates: Array<{ inlineData: unknown }> }).updates) expect(Buffer.isBuffer(u.inlineData)).toBe(true);
  });

  it('is the deserializer of Poll and PollStream answers in the loaded contract (requests and other messages keep proto-loader)', () => {
    const consume = loadQuireProto().quire.v1.ConsumeService.service;
    const wire = plain.responseSerialize(answers[4]?.[1]);
    expect(consume.PollStream?.responseDeserialize(wire)).toStrictEqual(plain.responseDeserialize(wire));
    expect(consume.Poll?.responseDeserialize(wire)).toStrictEqual(plain.responseDeserialize(wire));
    expect(consume.PollStream?.responseDeserialize).toBe(decodePollResponse);
    expect(consume.Poll?.responseDeserialize).toBe(decodePollResponse);
    expect(consume.PollStream?.requestDeserialize(plain.requestSerialize({ waitMs: 5 }))).toStrictEqual(plain.requestDeserialize(plain.requestSerialize({ waitMs: 5 })));
  });
});
