/// Records that left a partition by policy rather than by being read: what a loss marker
/// reports. Retention of data every upstream has acknowledged is not a loss and is not reported.
public struct DeletedRecords: Sendable, Equatable {
    public enum Cause: String, Sendable {
        /// The disk budget's `drop-oldest` policy made room.
        case diskBudget = "drop-oldest"
        /// Retention by age or size deleted data an upstream had not acknowledged (possible only
        /// for upstreams with `required = false`, whose acknowledgement does not hold retention).
        case retentionUnreplicated = "retention-unreplicated"
    }

    public var cause: Cause
    public var topic: String
    public var partition: Int32
    public var firstOffset: Int64
    public var lastOffset: Int64
    /// When the first deleted segment was started and the largest record timestamp deleted.
    public var fromTimestampMs: Int64
    public var toTimestampMs: Int64
    /// The first deleted offset no upstream had acknowledged; nil when every upstream had them
    /// all (or the partition replicates nowhere).
    public var unreplicatedFrom: Int64?

    public var count: Int64 { lastOffset - firstOffset + 1 }
}
