import { describe, expect, it } from 'vitest';
import { loadQuireProto } from '@quire/proto';
import { GRPC_RULES } from './auth.ts';

describe('access rules cover the contract', () => {
  it('every method of ConsumeService has a rule; payload reads are consume, descriptors read', () => {
    const methods = Object.keys(loadQuireProto().quire.v1.ConsumeService.service);
    expect(methods.filter((m) => !(m in GRPC_RULES))).toEqual([]);
    const rule = (name: string) => GRPC_RULES[name] as (m: unknown) => unknown;
    expect(rule('ReadData')({ topic: 'a.b' })).toEqual({ action: 'consume', topic: 'a.b' });
    expect(rule('ReadInline')({ topic: 'a.b' })).toEqual({ action: 'consume', topic: 'a.b' });
    expect(rule('GetVersion')({ topic: 'a.b' })).toEqual({ action: 'read', topic: 'a.b' });
    // A poll is decided per subscription by the poll filter, after authentication.
    expect(rule('Poll')({})).toEqual([]);
  });
});
