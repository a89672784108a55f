// How the UI reads the services' answers: the error body `{error: {code, message, field}}`
// becomes an ApiError naming the field, 401/403 tell the token box, an unreachable API and
// a proxy's 502 read as such; the token and actor go out as headers.
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { ApiError, api, onAuthError, request, setActor, setToken } from './api.ts';

const store = new Map<string, string>();
beforeEach(() => {
  store.clear();
  vi.stubGlobal('localStorage', {
    getItem: (k: string) => store.get(k) ?? null,
    setItem: (k: string, v: string) => void store.set(k, v),
    removeItem: (k: string) => void store.delete(k),
  });
});
afterEach(() => vi.unstubAllGlobals());

function answer(status: number, body: string, seen?: { url?: string; init?: RequestInit }) {
  vi.stubGlobal('fetch', async (url: string, init: RequestInit) => {
    if (seen) Object.assign(seen, { url, init });
    return new Response(body, { status });
  });
}

describe('request', () => {
  it('sends the token as a bearer and the operator name as the actor', async () => {
    setToken('s3cret');
    setActor('alice');
    const seen: { url?: string; init?: RequestInit } = {};
    answer(200, '{"topics":[]}', seen);
    expect(await api.topics('pay')).toEqual({ topics: [] });
    expect(seen.url).toBe('/api/v1/admin/topics?prefix=pay');
    expect(seen.init?.headers).toMatchObject({ authorization: 'Bearer s3cret', 'x-quire-actor': 'alice' });
  });

  it("turns the service's error body into an ApiError naming the field", async () => {
    answer(400, JSON.stringify({ error: { code: 'INVALID_ARGUMENT', message: 'name: must match ^[a-z]', field: 'name' } }));
    const err = await request('POST', '/v1/topics', { name: 'X' }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ApiError);
    expect(err).toMatchObject({ status: 400, code: 'INVALID_ARGUMENT', message: 'name: must match ^[a-z]', field: 'name' });
  });

  it('tells the token box about 401 and 403 answers', async () => {
    const seen: ApiError[] = [];
    const off = onAuthError((e) => seen.push(e));
    answer(401, JSON.stringify({ error: { code: 'UNAUTHENTICATED', message: 'a bearer token is required' } }));
    await request('GET', '/v1/audit').catch(() => {});
    answer(403, JSON.stringify({ error: { code: 'PERMISSION_DENIED', message: 'role reader cannot pin' } }));
    await request('POST', '/v1/topics/t/pins', {}).catch(() => {});
    off();
    expect(seen.map((e) => [e.status, e.isAuth, e.message])).toEqual([
      [401, true, 'a bearer token is required'],
      [403, true, 'role reader cannot pin'],
    ]);
  });

  it('reads an unreachable API and a bad gateway as such, and keeps a non-JSON body readable', async () => {
    vi.stubGlobal('fetch', async () => {
      throw new TypeError('Failed to fetch');
    });
    await expect(request('GET', '/v1/audit')).rejects.toMatchObject({ status: 0, message: 'Cannot reach the Quire API: Failed to fetch' });
    answer(502, JSON.stringify({ statusCode: 502, error: 'Bad Gateway', message: 'connect ECONNREFUSED 127.0.0.1:7080' }));
    await expect(request('GET', '/v1/audit')).rejects.toMatchObject({ status: 502, message: 'The service is unreachable (502): connect ECONNREFUSED 127.0.0.1:7080' });
    answer(500, 'upstream exploded');
    await expect(request('GET', '/v1/audit')).rejects.toMatchObject({ status: 500, message: 'upstream exploded' });
  });
});
