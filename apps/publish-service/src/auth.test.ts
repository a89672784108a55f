import { describe, expect, it } from 'vitest';
import { loadQuireProto } from '@quire/proto';
import { GRPC_RULES } from './auth.ts';

describe('access rules cover the contract', () => {
  it('every method of PublishService and AdminService has a rule (none falls back to admin-only by omission)', () => {
    const v1 = loadQuireProto().quire.v1;
    const publish = [...Object.keys(v1.PublishService.service), ...Object.keys(v1.AdminService.service)];
    expect(publish.filter((m) => !(m in GRPC_RULES))).toEqual([]);
  });

  it('a rule names the topic of the request message', () => {
    const rule = (name: string) => GRPC_RULES[name] as (m: unknown) => unknown;
    expect(rule('Pin')({ topic: 'a.b', version: '1' })).toEqual({ action: 'operate', topic: 'a.b' });
    expect(rule('Publish')({ options: { topic: 'a.b' } })).toEqual({ action: 'publish', topic: 'a.b' });
    expect(rule('PublishStream')({ header: { topic: 'a.b' } })).toEqual({ action: 'publish', topic: 'a.b' });
    expect(rule('UpdateTopic')({ topic: { name: 'a.b' } })).toEqual({ action: 'manage', topic: 'a.b' });
    expect(rule('ListAudit')({ topic: '' })).toEqual({ action: 'read' });
    expect(rule('CreateToken')({})).toEqual({ action: 'manage' });
  });
});
