// Public surface of @quire/observability: metrics, readiness, health, logs, API docs.
export { consistencyMetrics, createMetrics, pollMetrics, publishMetrics } from './metrics.ts';
export type { Probe, QuireMetrics, ServiceName } from './metrics.ts';
export {
  countFailures,
  failureCode,
  instrumentConsistency,
  instrumentPolls,
  instrumentPublishes,
  instrumentStores,
  reasonLabel,
  trackCache,
  trackChangeHints,
  trackHintWatch,
  trackInlineCache,
  trackLeadership,
  trackRollouts,
} from './instrument.ts';
export type { StoresLike } from './instrument.ts';
export { PROBE_KEY, Readiness, blobChecks, storeCheck } from './readiness.ts';
export type { CheckResult, CheckStatus, ReadinessCheck, ReadinessOptions, ReadinessReport } from './readiness.ts';
export { addHealthAndReflection, grpcCallMetrics } from './grpc.ts';
export type { GrpcHealth, ServingStatus } from './grpc.ts';
export { REQUEST_ID_HEADER, REQUEST_ID_OPTIONS, errorBodySchema, installApiDocs, mountObservability } from './rest.ts';
export type { ApiInfo, MountOptions } from './rest.ts';
export { observe } from './observe.ts';
export type { ObserveOptions, Observed } from './observe.ts';
