/**
 * Propagation stage markers, as Node `diagnostics_channel`s: a publish reaching this
 * replica (change hint), the topic state replaced in the cache (held polls woken), a held
 * poll answered with an update. Nothing is computed or written unless a subscriber is
 * attached (`hasSubscribers`), and none is in production: the propagation benchmark
 * preloads one into the service process (`bench/src/stage-trace.mjs`) and stamps each
 * message with the monotonic clock on receipt (publishes are synchronous).
 */
import { channel } from 'node:diagnostics_channel';

/** `{ topic }` for each change hint received ('' for a stream's "connected" message). */
export const hintReceived = channel('quire.consume.hint');
/** `{ topic }` once a reload replaced the topic's state and its listeners (the held polls' wake-up) ran. */
export const topicChanged = channel('quire.consume.topicChanged');
/** The `PollResult` of a long-poll answered with updates, as handed to the gRPC transport. */
export const pollAnswered = channel('quire.consume.pollAnswered');
