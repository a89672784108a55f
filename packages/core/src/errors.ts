/**
 * The one error type of Quire, with a closed set of codes (the gRPC status codes we use).
 * Transports map the code to a gRPC status and an HTTP status in one table
 * (`httpStatusOf` / `grpcStatusOf` below); adapters translate driver errors into these codes.
 */
export const Code = {
  CANCELLED: 'CANCELLED',
  INVALID_ARGUMENT: 'INVALID_ARGUMENT',
  DEADLINE_EXCEEDED: 'DEADLINE_EXCEEDED',
  NOT_FOUND: 'NOT_FOUND',
  ALREADY_EXISTS: 'ALREADY_EXISTS',
  PERMISSION_DENIED: 'PERMISSION_DENIED',
  RESOURCE_EXHAUSTED: 'RESOURCE_EXHAUSTED',
  FAILED_PRECONDITION: 'FAILED_PRECONDITION',
  ABORTED: 'ABORTED',
  UNIMPLEMENTED: 'UNIMPLEMENTED',
  INTERNAL: 'INTERNAL',
  UNAVAILABLE: 'UNAVAILABLE',
  DATA_LOSS: 'DATA_LOSS',
  UNAUTHENTICATED: 'UNAUTHENTICATED',
} as const;
export type Code = (typeof Code)[keyof typeof Code];

/** gRPC numeric status per code (grpc/status.proto). */
const GRPC_STATUS: Record<Code, number> = {
  CANCELLED: 1,
  INVALID_ARGUMENT: 3,
  DEADLINE_EXCEEDED: 4,
  NOT_FOUND: 5,
  ALREADY_EXISTS: 6,
  PERMISSION_DENIED: 7,
  RESOURCE_EXHAUSTED: 8,
  FAILED_PRECONDITION: 9,
  ABORTED: 10,
  UNIMPLEMENTED: 12,
  INTERNAL: 13,
  UNAVAILABLE: 14,
  DATA_LOSS: 15,
  UNAUTHENTICATED: 16,
};

/** HTTP status per code, following the mapping of google.rpc.Code. */
const HTTP_STATUS: Record<Code, number> = {
  CANCELLED: 499,
  INVALID_ARGUMENT: 400,
  DEADLINE_EXCEEDED: 504,
  NOT_FOUND: 404,
  ALREADY_EXISTS: 409,
  PERMISSION_DENIED: 403,
  RESOURCE_EXHAUSTED: 429,
  FAILED_PRECONDITION: 412,
  ABORTED: 409,
  UNIMPLEMENTED: 501,
  INTERNAL: 500,
  UNAVAILABLE: 503,
  DATA_LOSS: 500,
  UNAUTHENTICATED: 401,
};

export function grpcStatusOf(code: Code): number {
  return GRPC_STATUS[code];
}
export function httpStatusOf(code: Code): number {
  return HTTP_STATUS[code];
}
const BY_GRPC = new Map(Object.entries(GRPC_STATUS).map(([k, v]) => [v, k as Code]));
export function codeFromGrpcStatus(status: number): Code {
  return BY_GRPC.get(status) ?? Code.INTERNAL;
}

export interface QuireErrorOptions {
  /** The request field the error is about, as a dotted path (`metadata.owner`, `stages[1].scope`). */
  field?: string;
  cause?: unknown;
}

export class QuireError extends Error {
  override readonly name = 'QuireError';
  readonly code: Code;
  readonly field: string | undefined;

  constructor(code: Code, message: string, options: QuireErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.field = options.field;
  }

  /** Wrap anything thrown into a QuireError; a QuireError passes through unchanged. */
  static from(err: unknown, fallback: Code = Code.INTERNAL): QuireError {
    if (err instanceof QuireError) return err;
    const message = err instanceof Error ? err.message : String(err);
    return new QuireError(fallback, message, { cause: err });
  }

  static invalid(field: string, message: string): QuireError {
    return new QuireError(Code.INVALID_ARGUMENT, `${field}: ${message}`, { field });
  }
  static notFound(what: string, field?: string): QuireError {
    return new QuireError(Code.NOT_FOUND, `${what} not found`, field === undefined ? {} : { field });
  }
}

export function isQuireError(err: unknown, code?: Code): err is QuireError {
  return err instanceof QuireError && (code === undefined || err.code === code);
}
