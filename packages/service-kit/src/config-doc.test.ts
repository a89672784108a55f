import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { configTable } from './config-doc.ts';
import { knownVariables } from './config.ts';

describe('configuration reference', () => {
  it('lists every variable once', () => {
    const table = configTable();
    for (const v of knownVariables()) expect(table.split(`\`${v}\``).length - 1).toBe(1);
  });

  it('is the one in the README (regenerate with `pnpm config-doc`)', () => {
    const readme = readFileSync(new URL('../../../README.md', import.meta.url), 'utf8');
    expect(readme).toContain(configTable());
  });
});
