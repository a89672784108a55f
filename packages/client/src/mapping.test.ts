// Proto → SDK mapping of rollout runs and audit entries (int64 strings, empty = absent).
import { describe, expect, it } from 'vitest';
import { auditFromPb, rolloutRunFromPb } from './mapping.ts';

describe('rolloutRunFromPb', () => {
  it('maps a run with its plan; 0 / empty fields are left out', () => {
    const run = rolloutRunFromPb({
      topic: 't',
      runId: 'r1',
      version: '4',
      plan: {
        stages: [
          { name: 'canary', scope: { attributes: { cluster: 'canary' } }, bakeMs: '0' },
          { name: '', scope: null, bakeMs: '3600000' },
        ],
        health: null,
      },
      status: 'completed',
      stageIndex: 1,
      stageReleasedAt: '1000',
      nextStageAt: '0',
      reason: '',
      createdAt: '900',
      updatedAt: '1000',
      startedBy: 'ops',
    });
    expect(run).toEqual({
      topic: 't',
      runId: 'r1',
      version: 4,
      plan: { stages: [{ name: 'canary', scope: { cluster: 'canary' }, bakeMs: 0 }, { scope: {}, bakeMs: 3_600_000 }] },
      status: 'completed',
      stageIndex: 1,
      stageReleasedAt: 1000,
      createdAt: 900,
      updatedAt: 1000,
      startedBy: 'ops',
    });
  });

  it('keeps the health gate, the next stage time and the reason', () => {
    const run = rolloutRunFromPb({
      topic: 't', runId: 'r', version: '1', status: 'paused', stageIndex: 0, stageReleasedAt: '5', nextStageAt: '65', reason: 'gate', createdAt: '1', updatedAt: '5', startedBy: 'a',
      plan: { stages: [{ name: '', scope: { attributes: {} }, bakeMs: '0' }], health: { maxFailureRatio: 0.1, minInstances: 3, action: 'pause' } },
    });
    expect(run).toMatchObject({ nextStageAt: 65, reason: 'gate', plan: { health: { maxFailureRatio: 0.1, minInstances: 3, action: 'pause' } } });
  });
});

describe('auditFromPb', () => {
  it('parses the details JSON; empty topic / reason are absent', () => {
    expect(auditFromPb({ id: 'a', at: '7', actor: 'ops', action: 'rollback', topic: 't', reason: 'bad', detailsJson: '{"from":2,"version":1}' })).toEqual({
      id: 'a', at: 7, actor: 'ops', action: 'rollback', topic: 't', reason: 'bad', details: { from: 2, version: 1 },
    });
    expect(auditFromPb({ id: 'b', at: '8', actor: 'x', action: 'publish', topic: '', reason: '', detailsJson: 'not json' })).toEqual({
      id: 'b', at: 8, actor: 'x', action: 'publish', details: { raw: 'not json' },
    });
  });
});
