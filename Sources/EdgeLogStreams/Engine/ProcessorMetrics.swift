/// What a processor has done, for /metrics, `edgelog streams describe` and tests.
public struct ProcessorMetrics: Sendable, Equatable {
    public var recordsIn: Int64 = 0
    public var recordsOut: Int64 = 0
    /// Records the WHERE clause (or HAVING) did not pass.
    public var filtered: Int64 = 0
    /// Records that came after their window closed: dropped, sent to the side topic, or
    /// applied as an update, by the query's LATE policy.
    public var late: Int64 = 0
    public var lateDropped: Int64 = 0
    public var lateToSideTopic: Int64 = 0
    public var lateUpdates: Int64 = 0
    /// Records DEDUPE found seen, THROTTLE found over the rate, DEADBAND found unmoved.
    public var deduplicated: Int64 = 0
    public var throttled: Int64 = 0
    public var deadbanded: Int64 = 0
    /// Records sent to the dead-letter topic: event time too far in the future, or none at all.
    public var deadLettered: Int64 = 0
    /// Keys evicted at the state bound (their windows emitted early, flagged partial).
    public var evictions: Int64 = 0
    /// Records of new keys dropped at the state bound (ON_STATE_FULL = 'drop-new').
    public var droppedNewKeys: Int64 = 0
    /// Times the processor stopped reading at the state bound (ON_STATE_FULL = 'pause').
    public var pauses: Int64 = 0
    public var keys = 0
    public var openWindows = 0
    public var stateBytes = 0
    /// The processor's watermark (nil until every input has a time).
    public var watermarkMs: Int64?

    public init() {}
}
