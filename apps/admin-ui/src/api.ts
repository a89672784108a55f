/**
 * The publish service's REST API as the UI calls it (through the UI server's /api proxy).
 * Every call sends the operator's name (`x-quire-actor`) and, when set, their API token
 * (`Authorization: Bearer`), both kept in localStorage. Errors become `ApiError` with the
 * server's message and field, so forms can show them on the field.
 */
import type { AuditEntry, FleetReport, Pin, Release, RolloutPlan, Topic, VersionRecord } from '@quire/core';
import type { RunView } from './lib/countdown.ts';

export const API_BASE = '/api';
const TOKEN_KEY = 'quire.token';
const ACTOR_KEY = 'quire.actor';

export function getToken(): string {
  return localStorage.getItem(TOKEN_KEY) ?? '';
}
export function setToken(token: string): void {
  if (token === '') localStorage.removeItem(TOKEN_KEY);
  else localStorage.setItem(TOKEN_KEY, token);
}
export function getActor(): string {
  return localStorage.getItem(ACTOR_KEY) ?? '';
}
export function setActor(actor: string): void {
  if (actor === '') localStorage.removeItem(ACTOR_KEY);
  else localStorage.setItem(ACTOR_KEY, actor);
}

export class ApiError extends Error {
  readonly status: number;
  readonly code: string;
  readonly field: string | undefined;
  constructor(status: number, code: string, message: string, field?: string) {
    super(message);
    this.status = status;
    this.code = code;
    this.field = field;
  }
  get isAuth(): boolean {
    return this.status === 401 || this.status === 403;
  }
}

/** Listeners told when the server answers 401/403 (the header shows the token box). */
const authListeners = new Set<(err: ApiError) => void>();
export function onAuthError(fn: (err: ApiError) => void): () => void {
  authListeners.add(fn);
  return () => authListeners.delete(fn);
}

export function authHeaders(): Record<string, string> {
  const h: Record<string, string> = {};
  const token = getToken();
  if (token !== '') h.authorization = `Bearer ${token}`;
  h['x-quire-actor'] = getActor() || 'admin-ui';
  return h;
}

async function errorOf(res: Response): Promise<ApiError> {
  const text = await res.text().catch(() => '');
  let code = `HTTP_${res.status}`;
  let message = text.trim() === '' ? `${res.status} ${res.statusText}` : text.slice(0, 500);
  let field: string | undefined;
  try {
    const body = JSON.parse(text) as { error?: { code?: string; message?: string; field?: string } | string; message?: string; code?: string };
    if (typeof body.error === 'object' && body.error !== null) {
      code = body.error.code ?? code;
      message = body.error.message ?? message;
      field = body.error.field;
    } else if (typeof body.message === 'string') {
      message = body.message;
      if (typeof body.code === 'string') code = body.code;
    }
  } catch {
    // not JSON: keep the text
  }
  if (res.status === 502 || res.status === 503 || res.status === 504) message = `The service is unreachable (${res.status}): ${message}`;
  const err = new ApiError(res.status, code, message, field);
  if (err.isAuth) for (const fn of authListeners) fn(err);
  return err;
}

export async function request<T>(method: string, path: string, body?: unknown): Promise<T> {
  let res: Response;
  try {
    res = await fetch(`${API_BASE}${path}`, {
      method,
      headers: { ...authHeaders(), ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
  } catch (e) {
    throw new ApiError(0, 'NETWORK', `Cannot reach the Quire API: ${(e as Error).message}`);
  }
  if (!res.ok) throw await errorOf(res);
  if (res.status === 204) return undefined as T;
  return (await res.json()) as T;
}

export async function fetchText(path: string, maxBytes: number): Promise<{ text: string; truncated: boolean; contentType: string }> {
  const res = await fetch(`${API_BASE}${path}`, { headers: authHeaders() });
  if (!res.ok) throw await errorOf(res);
  const buf = new Uint8Array(await res.arrayBuffer());
  const truncated = buf.byteLength > maxBytes;
  return { text: new TextDecoder().decode(truncated ? buf.subarray(0, maxBytes) : buf), truncated, contentType: res.headers.get('content-type') ?? '' };
}

/** Send a body with XMLHttpRequest (fetch has no upload progress), answering like `request`. */
function xhrSend<T>(method: string, path: string, body: Blob | string, contentType: string, onProgress?: (loaded: number, total: number) => void): Promise<T> {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open(method, `${API_BASE}${path}`);
    for (const [k, v] of Object.entries(authHeaders())) xhr.setRequestHeader(k, v);
    xhr.setRequestHeader('content-type', contentType);
    const total = typeof body === 'string' ? body.length : body.size;
    xhr.upload.onprogress = (e) => onProgress?.(e.loaded, e.lengthComputable ? e.total : total);
    xhr.onerror = () => reject(new ApiError(0, 'NETWORK', 'The upload failed: the connection to the Quire API was lost'));
    xhr.onload = () => {
      if (xhr.status >= 200 && xhr.status < 300) resolve(JSON.parse(xhr.responseText) as T);
      else void errorOf(new Response(xhr.responseText, { status: xhr.status, statusText: xhr.statusText })).then(reject);
    };
    xhr.send(body);
  });
}

/** Files up to this size go as base64 in a JSON publish (which can use the rollout plan); larger ones are streamed. */
export const JSON_UPLOAD_MAX_BYTES = 5 * 1024 * 1024;

export interface PublishOptions {
  contentType: string;
  metadata: Record<string, string>;
  /** Undefined: global. */
  scopes?: Record<string, string>[];
  useRolloutPlan?: boolean;
  onProgress?: (loaded: number, total: number) => void;
}

function base64Of(bytes: Uint8Array): string {
  let s = '';
  for (let i = 0; i < bytes.length; i += 0x8000) s += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return btoa(s);
}

/** Publish text or a file, with upload progress. */
export async function publishData(topic: string, data: string | File, o: PublishOptions): Promise<PublishResult> {
  const path = `/v1/topics/${encodeURIComponent(topic)}/versions`;
  const common = { contentType: o.contentType, metadata: o.metadata, ...(o.scopes === undefined ? {} : { scopes: o.scopes }), ...(o.useRolloutPlan ? { useRolloutPlan: true } : {}) };
  if (typeof data === 'string') return xhrSend<PublishResult>('POST', path, JSON.stringify({ data, ...common }), 'application/json', o.onProgress);
  if (data.size <= JSON_UPLOAD_MAX_BYTES) {
    const body = JSON.stringify({ dataBase64: base64Of(new Uint8Array(await data.arrayBuffer())), ...common });
    return xhrSend<PublishResult>('POST', path, body, 'application/json', o.onProgress);
  }
  if (o.useRolloutPlan) throw new ApiError(400, 'INVALID_ARGUMENT', `files over ${JSON_UPLOAD_MAX_BYTES / 1024 / 1024} MiB are published globally or to scopes; start a rollout of an existing version from the Rollouts tab`, 'useRolloutPlan');
  const q = new URLSearchParams();
  if (Object.keys(o.metadata).length > 0) q.set('metadata', JSON.stringify(o.metadata));
  if (o.scopes !== undefined) q.set('scopes', JSON.stringify(o.scopes));
  const qs = q.toString();
  return xhrSend<PublishResult>('PUT', `${path}${qs === '' ? '' : `?${qs}`}`, data, o.contentType || 'application/octet-stream', o.onProgress);
}

export interface TopicView extends Topic {
  headVersion: number;
}
export interface TopicSummary {
  name: string;
  owner: string;
  description: string;
  headVersion: number;
  lastPublishAt?: number;
  pins: Pin[];
  activeRun?: RunView;
  hasRolloutPlan: boolean;
  updatedAt: number;
}
export interface TopicState {
  topic: TopicView;
  pins: Pin[];
  pinHistory: Pin[];
  releases: Release[];
  runs: RunView[];
  rollback: { current: number; target: number } | { refused: string };
}
export interface PublishResult {
  version: VersionRecord;
  replayed?: boolean;
  releases?: Release[];
}

const t = (name: string) => encodeURIComponent(name);

export const api = {
  topics: (prefix?: string) => request<{ topics: TopicSummary[] }>('GET', `/v1/admin/topics${prefix ? `?prefix=${encodeURIComponent(prefix)}` : ''}`),
  topicState: (name: string) => request<TopicState>('GET', `/v1/admin/topics/${t(name)}`),
  createTopic: (body: Record<string, unknown>) => request<TopicView>('POST', '/v1/topics', body),
  updateTopic: (name: string, body: Record<string, unknown>) => request<TopicView>('PATCH', `/v1/topics/${t(name)}`, body),
  versions: (name: string, limit: number, cursor?: string) =>
    request<{ versions: VersionRecord[]; next?: string }>('GET', `/v1/topics/${t(name)}/versions?limit=${limit}${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`),
  version: (name: string, version: number) => request<{ version: VersionRecord; releases: Release[] }>('GET', `/v1/topics/${t(name)}/versions/${version}`),
  dataUrl: (name: string, version: number) => `${API_BASE}/v1/topics/${t(name)}/versions/${version}/data`,
  dataText: (name: string, version: number, maxBytes: number) => fetchText(`/v1/topics/${t(name)}/versions/${version}/data`, maxBytes),
  pin: (name: string, version: number, reason: string) => request<{ pin: Pin }>('POST', `/v1/topics/${t(name)}/pins`, { version, reason }),
  unpin: (name: string, reason: string, scope?: Record<string, string>) =>
    request<{ pin: Pin }>('POST', `/v1/topics/${t(name)}/pins:unpin`, { reason, ...(scope === undefined ? {} : { scope }) }),
  rollback: (name: string, reason: string) => request<{ pin: Pin; from: number }>('POST', `/v1/topics/${t(name)}/rollback`, { reason }),
  startRollout: (name: string, version: number) => request<RunView>('POST', `/v1/topics/${t(name)}/rollouts`, { version }),
  controlRollout: (name: string, runId: string, action: 'pause' | 'resume' | 'advance' | 'abort', reason: string) =>
    request<RunView>('POST', `/v1/topics/${t(name)}/rollouts/${encodeURIComponent(runId)}/${action}`, { reason }),
  fleet: (name: string) => request<{ now: number; since: number; reports: FleetReport[] }>('GET', `/v1/admin/topics/${t(name)}/fleet`),
  audit: (q: { topic?: string; actor?: string; action?: string; since?: number; until?: number; cursor?: string; limit?: number }) => {
    const p = new URLSearchParams();
    for (const [k, v] of Object.entries(q)) if (v !== undefined && v !== '') p.set(k, String(v));
    return request<{ entries: AuditEntry[]; next?: string }>('GET', `/v1/audit?${p.toString()}`);
  },
};

export type { AuditEntry, FleetReport, Pin, Release, RolloutPlan, VersionRecord };
