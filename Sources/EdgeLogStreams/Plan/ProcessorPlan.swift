/// A processor ready to run: the query's expressions compiled, its window and its time and
/// state rules settled. Made once from the SQL text by `ProcessorPlan.make`; everything that
/// can be wrong with a query is found here, before a record is read.
public struct ProcessorPlan: Sendable {
    public enum LatePolicy: Sendable, Equatable {
        /// Late records are counted and dropped.
        case drop
        /// Late records go, unchanged, to a side topic.
        case sideTopic(String)
        /// A late record updates its closed window, which is emitted again (same key, so an
        /// upserting store keeps the corrected result). Closed windows are kept `retentionMs`.
        case update(retentionMs: Int64)
    }

    public enum StateFullPolicy: String, Sendable {
        /// Emit the least recently updated key's windows early (flagged partial) and forget it.
        case evict
        /// Records of keys not yet in state are counted and dropped.
        case dropNew = "drop-new"
        /// Stop reading; the input waits in the log until windows close and state shrinks.
        case pause
    }

    /// Per-key filters of a stateless query, applied after WHERE in this order. The key is
    /// the PARTITION BY value, else the record's key.
    struct KeyFilters: Sendable {
        var dedupeId: CompiledExpression?
        var dedupeWithinMs: Int64 = 0
        var throttleCount: Int64?
        var throttlePerMs: Int64 = 0
        var deadbandValue: CompiledExpression?
        var deadbandThreshold: Double = 0
        var deadbandEveryMs: Int64?
    }

    struct OutputColumn: Sendable {
        var name: String
        var expression: CompiledExpression
    }

    enum Shape: Sendable {
        /// Filter and projection, record by record. `passThrough`: SELECT * alone, the value
        /// goes out as it came. `star`: the value's members first, then the named columns.
        case stateless(columns: [OutputColumn], star: Bool, passThrough: Bool, partitionBy: CompiledExpression?)
        /// GROUP BY and/or WINDOW.
        case aggregate(
            groupBy: [CompiledExpression], aggregates: [AggregateSpec], window: SQLWindow?, columns: [OutputColumn],
            having: CompiledExpression?)
    }

    public var name: String
    public var query: String
    public var inputs: [String]
    public var outputTopic: String
    public var deadLetterTopic: String
    public var emit: SQLCreateStream.Emit
    var shape: Shape
    var filter: CompiledExpression?
    var keyFilters: KeyFilters?
    /// For each aggregate, an earlier one with the same argument (evaluated once per record).
    var argumentSources: [Int?] = []
    var timestampBy: CompiledExpression?
    public var outOfOrderMs: Int64
    public var graceMs: Int64
    public var latePolicy: LatePolicy
    public var maxFutureMs: Int64
    public var idleTimeoutMs: Int64
    public var maxKeys: Int
    public var maxStateBytes: Int
    public var onStateFull: StateFullPolicy
    /// The planner's estimate of one key's state at its largest (its windows open at once,
    /// each aggregate at its own bound), and so of the whole state under MAX_KEYS, capped by
    /// MAX_STATE_BYTES: what `edgelog streams describe` shows before any record is read.
    public var estimatedKeyBytes = 0
    public var estimatedStateBytes: Int {
        // A stateless query without per-key filters estimates 0 bytes per key, so 0 in all.
        let (total, overflow) = maxKeys.multipliedReportingOverflow(by: estimatedKeyBytes)
        return overflow ? maxStateBytes : min(maxStateBytes, total)
    }

    public var isWindowed: Bool {
        if case .aggregate(_, _, let window, _, _) = shape { return window != nil }
        return false
    }

    public var isStateless: Bool {
        if case .stateless = shape { return true }
        return false
    }

    /// The topics a processor writes: its output, and the side and dead-letter topics.
    public var outputTopics: [String] {
        var topics = [outputTopic, deadLetterTopic]
        if case .sideTopic(let topic) = latePolicy { topics.append(topic) }
        return topics
    }
}
