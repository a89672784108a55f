/**
 * Token administration (`quire.v1.AdminService` on the publish service), for admins:
 * create a token (its string is returned once), list tokens (never their secrets), revoke.
 */
import * as grpc from '@grpc/grpc-js';
import { loadQuireProto, type AdminServiceClient, type PbApiTokenOutput } from '@quire/proto';
import { tokenClientOptions } from './auth.ts';
import { ACTOR_METADATA } from './publisher.ts';
import { toNumber, unary } from './transport.ts';

export interface TokenInfo {
  id: string;
  name: string;
  role: string;
  prefixes: string[];
  application?: string;
  createdAt: number;
  createdBy: string;
  /** When it stops working (ms since the epoch); absent = never. */
  expiresAt?: number;
  revokedAt?: number;
  revokedBy?: string;
}

export interface TokenAdminOptions {
  /** `host:port` of the publish service's gRPC API. */
  endpoint: string;
  /** An admin token. */
  token?: string;
  actor?: string;
  timeoutMs?: number;
}

export interface NewToken {
  name: string;
  role: 'admin' | 'operator' | 'publisher' | 'consumer' | 'viewer';
  prefixes?: string[];
  application?: string;
  /** When the token stops working (ms since the epoch, in the future); absent = never. */
  expiresAt?: number;
}

export interface TokenAdmin {
  /** The new token and its string (`tokenString`), which is never shown again. */
  createToken(input: NewToken): Promise<{ token: TokenInfo; tokenString: string }>;
  listTokens(): Promise<TokenInfo[]>;
  revokeToken(id: string): Promise<TokenInfo>;
  close(): void;
}

export function tokenFromPb(t: PbApiTokenOutput): TokenInfo {
  const out: TokenInfo = { id: t.id, name: t.name, role: t.role, prefixes: [...t.prefixes], createdAt: toNumber(t.createdAt), createdBy: t.createdBy };
  if (t.application !== '') out.application = t.application;
  if (toNumber(t.expiresAt) > 0) out.expiresAt = toNumber(t.expiresAt);
  if (toNumber(t.revokedAt) > 0) {
    out.revokedAt = toNumber(t.revokedAt);
    out.revokedBy = t.revokedBy;
  }
  return out;
}

export function createTokenAdmin(options: TokenAdminOptions): TokenAdmin {
  const Ctor = loadQuireProto().quire.v1.AdminService;
  const client: AdminServiceClient = new Ctor(options.endpoint, grpc.credentials.createInsecure(), tokenClientOptions(options.token));
  const metadata = (): grpc.Metadata => {
    const md = new grpc.Metadata();
    if (options.actor !== undefined && options.actor !== '') md.set(ACTOR_METADATA, options.actor);
    return md;
  };
  const call = <Res>(method: string, req: unknown): Promise<Res> => unary<Res>(client, method, req, { timeoutMs: options.timeoutMs ?? 30_000, metadata: metadata() });
  return {
    async createToken(input) {
      const res = await call<{ token: PbApiTokenOutput; tokenString: string }>('CreateToken', {
        name: input.name,
        role: input.role,
        prefixes: input.prefixes ?? [],
        application: input.application ?? '',
        expiresAt: String(input.expiresAt ?? 0),
      });
      return { token: tokenFromPb(res.token), tokenString: res.tokenString };
    },
    async listTokens() {
      return (await call<{ tokens: PbApiTokenOutput[] }>('ListTokens', {})).tokens.map(tokenFromPb);
    },
    async revokeToken(id) {
      return tokenFromPb(await call<PbApiTokenOutput>('RevokeToken', { id }));
    },
    close: () => client.close(),
  };
}
