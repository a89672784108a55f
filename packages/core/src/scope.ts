import type { ConsumerIdentity, Scope } from './model.ts';

/**
 * Canonical string of a scope: attributes sorted by name, `k=v` joined by `,`, with
 * `\`, `,` and `=` escaped. The global scope `{}` is the empty string.
 */
export function scopeKey(scope: Scope): string {
  return Object.keys(scope)
    .sort()
    .map((k) => `${esc(k)}=${esc(scope[k] as string)}`)
    .join(',');
}

function esc(s: string): string {
  return s.replace(/[\\,=]/g, (c) => `\\${c}`);
}

/** Inverse of `scopeKey`. */
export function parseScopeKey(key: string): Scope {
  const scope: Scope = {};
  if (key === '') return scope;
  let cur = '';
  let name: string | undefined;
  for (let i = 0; i < key.length; i++) {
    const c = key[i] as string;
    if (c === '\\') {
      cur += key[++i] ?? '';
    } else if (c === '=' && name === undefined) {
      name = cur;
      cur = '';
    } else if (c === ',') {
      scope[name ?? ''] = cur;
      name = undefined;
      cur = '';
    } else {
      cur += c;
    }
  }
  scope[name ?? ''] = cur;
  return scope;
}

/** A scope matches a consumer when every attribute it constrains equals the consumer's. */
export function scopeMatches(scope: Scope, identity: ConsumerIdentity): boolean {
  for (const k in scope) {
    if (identity[k] !== scope[k]) return false;
  }
  return true;
}

/** How specific a scope is: the number of attributes it constrains (0 = global). */
export function scopeSpecificity(scope: Scope): number {
  return Object.keys(scope).length;
}

/** Human form for logs and UIs: `global` or `cluster=api-canary, region=eu-west-1`. */
export function describeScope(scope: Scope): string {
  const keys = Object.keys(scope).sort();
  return keys.length === 0 ? 'global' : keys.map((k) => `${k}=${scope[k]}`).join(', ');
}
