import { describe, expect, it } from 'vitest';
import { detailsText } from './audit.ts';

describe('detailsText', () => {
  it('shortens ids, names scopes and plans, and leaves bookkeeping out', () => {
    expect(
      detailsText({
        runId: '2a339310-92f9-4697-bee2-4b6f81078eae',
        version: 3,
        revision: 2,
        plan: { stages: [{ name: 'canary', scope: { cluster: 'c' }, bakeMs: 0 }, { scope: {}, bakeMs: 1 }] },
        scope: { region: 'eu', cluster: 'a' },
      }),
    ).toBe('run 2a339310 · version 3 · plan canary → stage 2 · scope cluster=a, region=eu');
    expect(detailsText({ version: 1, publishId: 'x', size: 75, sha256: '9548a1a0889f95136cbf61e4', storage: 'inline', scopes: [] })).toBe('version 1 · 75 bytes · sha256 9548a1a0889f… · storage inline');
    expect(detailsText({ scopes: [{ cluster: 'canary' }, {}] })).toBe('scopes cluster=canary; global');
  });
});
