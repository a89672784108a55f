import { describe, expect, it } from 'vitest';
import { loadQuireProto } from './index.ts';

describe('proto contract', () => {
  it('loads both services with their methods from proto/', () => {
    const proto = loadQuireProto();
    const publish = proto.quire.v1.PublishService.service;
    const consume = proto.quire.v1.ConsumeService.service;
    expect(Object.keys(publish)).toEqual(expect.arrayContaining(['CreateTopic', 'Publish', 'PublishStream', 'CommitUploaded', 'Release', 'Pin', 'Unpin', 'Rollback', 'StartRollout', 'ControlRollout', 'ListAudit']));
    expect(Object.keys(consume)).toEqual(expect.arrayContaining(['Poll', 'GetVersion', 'ListVersions', 'VersionAt', 'ReadInline']));
    expect(publish.PublishStream?.requestStream).toBe(true);
  });

  it('round-trips a poll request through the wire format', () => {
    const proto = loadQuireProto();
    const poll = proto.quire.v1.ConsumeService.service.Poll;
    const req = { identity: { region: 'eu-west-1', application: 'checkout', cluster: 'c', instance: 'i-1', attributes: { az: 'a' } }, subscriptions: [{ topic: 'devices.supported', knownVersion: '41' }], waitMs: 30000 };
    const decoded = poll?.requestDeserialize(poll.requestSerialize(req));
    expect(decoded).toMatchObject({ waitMs: 30000, subscriptions: [{ topic: 'devices.supported', knownVersion: '41' }] });
  });
});
