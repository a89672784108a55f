/**
 * API tokens on the SDK's calls: every gRPC client the publisher, the consumer and the
 * direct uploader make carries `authorization: Bearer <token>` metadata (a client
 * interceptor, so no call site can forget it). The token is never logged by the SDK.
 */
import * as grpc from '@grpc/grpc-js';
import { QuireError } from '@quire/core';

export const AUTHORIZATION_METADATA = 'authorization';

/** Client options adding the token to every call (none without a token). */
export function tokenClientOptions(token: string | undefined): Partial<grpc.ClientOptions> {
  if (token === undefined || token === '') return {};
  if (/\s/.test(token)) throw QuireError.invalid('token', 'must be a Quire API token (no spaces)');
  const value = `Bearer ${token}`;
  const interceptor: grpc.Interceptor = (options, nextCall) =>
    new grpc.InterceptingCall(nextCall(options), {
      start(metadata, listener, next) {
        metadata.set(AUTHORIZATION_METADATA, value);
        next(metadata, listener);
      },
    });
  return { interceptors: [interceptor] };
}
