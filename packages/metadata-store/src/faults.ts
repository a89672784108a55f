/**
 * Faults an adapter can be told to inject, so the contract suite can check how it recovers
 * from outcomes that real databases produce only rarely. Both adapters accept `faults` in
 * their options; production code never sets it.
 *
 * Each fault fires once: on the first matching call of the store instance it was given to.
 */
export interface MetadataStoreFaults {
  /**
   * The next commitVersion's winning write is applied (`'applied'`) or not applied
   * (`'not-applied'`), but the adapter observes an unknown outcome (e.g. a Cassandra CAS
   * write timeout, an I/O error on SQLite's COMMIT). The adapter must resolve it: re-read
   * by publishId and return the version that was really written, or allocate again — never
   * a duplicate, never a gap.
   */
  commitOutcomeUnknown?: 'applied' | 'not-applied';
}
