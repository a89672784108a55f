/**
 * The one place where `cassandra-driver` errors become `QuireError`s, decided on the
 * driver's error classes and the protocol's error codes (never on message text).
 */
import cassandra from 'cassandra-driver';
import { Code, QuireError } from '@quire/core';

const { errors } = cassandra;
const RC = cassandra.types.responseErrorCodes;

/** Fields the driver adds to a `ResponseError` for timeouts (readers.js), typed loosely. */
interface ResponseErrorDetails {
  code: number;
  writeType?: string;
}

function responseCode(err: unknown): ResponseErrorDetails | undefined {
  return err instanceof errors.ResponseError ? (err as unknown as ResponseErrorDetails) : undefined;
}

/** Node's socket errno codes that mean "the node cannot be reached". */
const UNREACHABLE_ERRNO = new Set(['ECONNREFUSED', 'ECONNRESET', 'EHOSTUNREACH', 'ENETUNREACH', 'ETIMEDOUT', 'EPIPE', 'ENOTFOUND', 'EAI_AGAIN']);

/**
 * Translate anything a driver call threw into a `QuireError`, keeping the original as
 * `cause`. `what` names the operation for the message (`commitVersion payments.ab`).
 */
export function toQuireError(err: unknown, what: string): QuireError {
  if (err instanceof QuireError) return err;
  const code = codeOf(err);
  const detail = err instanceof Error ? err.message : String(err);
  return new QuireError(code, `cassandra: ${what}: ${detail}`, { cause: err });
}

function codeOf(err: unknown): Code {
  // No coordinator could be reached (every host down, refused, or its pool busy): retryable.
  if (err instanceof errors.NoHostAvailableError) return Code.UNAVAILABLE;
  // The client gave up waiting for the coordinator (socketOptions.readTimeout): retryable.
  if (err instanceof errors.OperationTimedOutError) return Code.UNAVAILABLE;
  // Every connection to the host has its maximum of in-flight requests: back off and retry.
  if (err instanceof errors.BusyConnectionError) return Code.UNAVAILABLE;
  // Wrong credentials / SASL failure: the caller is not who the cluster expects.
  if (err instanceof errors.AuthenticationError) return Code.UNAUTHENTICATED;
  // The driver refused our arguments (a bug in this adapter, not the caller's input).
  if (err instanceof errors.ArgumentError) return Code.INTERNAL;
  // A protocol feature the cluster lacks: a deployment problem.
  if (err instanceof errors.NotSupportedError) return Code.FAILED_PRECONDITION;
  const rc = responseCode(err);
  if (rc !== undefined) {
    switch (rc.code) {
      // Not enough live replicas for the consistency level: nothing was written; retryable.
      case RC.unavailableException:
        return Code.UNAVAILABLE;
      // The coordinator or replica is overloaded and shed the request: retryable.
      case RC.overloaded:
        return Code.UNAVAILABLE;
      // The coordinator is still joining the ring: retry on another node or later.
      case RC.isBootstrapping:
        return Code.UNAVAILABLE;
      // Replicas did not answer a read in time: retryable.
      case RC.readTimeout:
        return Code.UNAVAILABLE;
      // Replicas did not acknowledge a write in time. Plain writes are idempotent upserts
      // here, so the caller may retry. (A CAS write timeout never reaches this point on
      // the LWT paths: `isUnknownWriteOutcome` routes it to a SERIAL re-read first.)
      case RC.writeTimeout:
        return Code.UNAVAILABLE;
      // A replica failed the read / write (e.g. too many tombstones, disk error): retryable
      // once the node recovers, so UNAVAILABLE rather than INTERNAL.
      case RC.readFailure:
      case RC.writeFailure:
        return Code.UNAVAILABLE;
      // TRUNCATE could not reach every node.
      case RC.truncateError:
        return Code.UNAVAILABLE;
      // The role may not run this statement (GRANTs missing).
      case RC.unauthorized:
        return Code.PERMISSION_DENIED;
      // Wrong username / password.
      case RC.badCredentials:
        return Code.UNAUTHENTICATED;
      // CQL this adapter generated is wrong, or refers to a table that is missing (not
      // migrated): a bug or a deployment mistake, never the caller's input.
      case RC.syntaxError:
      case RC.invalid:
      case RC.configError:
      case RC.alreadyExists:
      case RC.unprepared:
      case RC.protocolError:
      case RC.functionFailure:
        return Code.INTERNAL;
      // The coordinator hit an unexpected exception.
      case RC.serverError:
        return Code.INTERNAL;
      default:
        return Code.INTERNAL;
    }
  }
  // Socket errors that escaped the driver's own wrapping (connect while starting up).
  const errno = (err as { code?: unknown } | null)?.code;
  if (typeof errno === 'string' && UNREACHABLE_ERRNO.has(errno)) return Code.UNAVAILABLE;
  return Code.INTERNAL;
}

/**
 * Whether a conditional (LWT) statement that threw may nevertheless have been applied,
 * so that the caller must find out with a SERIAL read:
 * - a write timeout of any write type: CAS (the Paxos round did not finish in time, a
 *   proposal may have been accepted) or SIMPLE (the Paxos commit phase timed out after the
 *   value was accepted, so it *will* be applied);
 * - the client timed out waiting for the coordinator after sending the request;
 * - no host answered: the inner errors may include a request that was sent before its
 *   connection died, so this is treated as unknown too (resolution then runs against the
 *   cluster once it answers, or fails UNAVAILABLE).
 * Everything else (unavailable before the round started, syntax, invalid) was not applied.
 */
export function isUnknownWriteOutcome(err: unknown): boolean {
  if (err instanceof errors.OperationTimedOutError) return true;
  if (err instanceof errors.NoHostAvailableError) return true;
  const rc = responseCode(err);
  return rc !== undefined && rc.code === RC.writeTimeout;
}

/**
 * A CAS write timeout, built exactly as the driver's response reader builds one, for the
 * fault hook of the contract suite (the real resolution code must handle it).
 */
export function simulatedCasWriteTimeout(): Error {
  const err = new errors.ResponseError(RC.writeTimeout, 'simulated CAS write timeout (fault injection)');
  Object.assign(err, { consistencies: cassandra.types.consistencies.serial, received: 0, blockFor: 1, writeType: 'CAS' });
  return err;
}
