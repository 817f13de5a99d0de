public import EdgeLogCore

/// What the runtime needs from a connector type's module: tasks to run, and the offsets it
/// keeps. The MQTT, HTTP and replication modules each provide one; the runtime knows none of
/// them.
public protocol ConnectorFamily: Sendable {
    var type: ConnectorType { get }
    /// A task for `spec`, not yet running. Throws when it cannot be made (a file it needs is
    /// gone): the connector is FAILED and tried again with backoff.
    func makeTask(_ spec: ConnectorSpec) throws -> any ConnectorTask
    /// The runtime knows `spec` now (loaded at start, created, added by a reload), whatever its
    /// state: a paused or stopped connector's offsets may still matter (retention keeps what
    /// an upstream-sink has not acknowledged).
    func adopted(_ spec: ConnectorSpec)
    /// The connector's offsets: source positions, sink checkpoints.
    func offsets(_ spec: ConnectorSpec) throws -> [ConnectorOffset]
    /// Sets the given offsets, or resets them all (`nil`); only while the connector is stopped.
    /// Returns what was done, for the API's message.
    func alterOffsets(_ spec: ConnectorSpec, to offsets: [ConnectorOffset]?) throws -> String
    /// The connector was deleted (and has stopped); drop its offsets unless `keepOffsets`.
    func removed(_ spec: ConnectorSpec, keepOffsets: Bool)
    /// Applies a new configuration to a running task without stopping it, when the change
    /// allows (an MQTT route's log topic); false: the task is restarted with it.
    func reconfigure(_ task: any ConnectorTask, to spec: ConnectorSpec) -> Bool
}

extension ConnectorFamily {
    public func offsets(_ spec: ConnectorSpec) throws -> [ConnectorOffset] { [] }
    public func alterOffsets(_ spec: ConnectorSpec, to offsets: [ConnectorOffset]?) throws -> String {
        throw ConnectorRuntimeError(.badRequest, "no_offsets", "a \(type.rawValue) connector keeps no offsets")
    }
    public func removed(_ spec: ConnectorSpec, keepOffsets: Bool) {}
    public func adopted(_ spec: ConnectorSpec) {}
    public func reconfigure(_ task: any ConnectorTask, to spec: ConnectorSpec) -> Bool { false }
}

/// A running connector. `run` returns when cancelled and throws when it cannot go on.
public protocol ConnectorTask: Sendable {
    func run() async throws
    /// Whether it does its job right now: a task that runs but cannot reach its peer says why.
    func health() -> ConnectorHealth
    /// Totals since the task was made.
    func counters() -> ConnectorCounters
}

public struct ConnectorHealth: Sendable, Equatable {
    /// Why the connector is not doing its job (nil: it is).
    public var problem: String?
    public var problemSinceMs: Int64?
    /// Attempts the task itself made to get past the problem (reconnects, resends).
    public var retries: Int
    /// When it last moved data or reached its peer.
    public var lastSuccessMs: Int64?

    public init(problem: String? = nil, problemSinceMs: Int64? = nil, retries: Int = 0, lastSuccessMs: Int64? = nil) {
        self.problem = problem
        self.problemSinceMs = problemSinceMs
        self.retries = retries
        self.lastSuccessMs = lastSuccessMs
    }
}

public struct ConnectorCounters: Sendable, Equatable {
    public var recordsIn: Int64 = 0
    public var bytesIn: Int64 = 0
    public var recordsOut: Int64 = 0
    public var bytesOut: Int64 = 0
    /// Errors by kind ("storage", "unroutable", "connection", "upstream").
    public var errors: [String: Int64] = [:]
    /// Sinks: what the log holds that the peer has not acknowledged.
    public var lagRecords: Int64? = nil
    public var lagBytes: Int64? = nil
    public var lagSeconds: Double? = nil

    public init() {}

    /// This task's counters plus the totals of the tasks before it (`earlier`); the lag is
    /// this task's.
    func adding(_ earlier: ConnectorCounters) -> ConnectorCounters {
        var sum = self
        sum.recordsIn += earlier.recordsIn
        sum.bytesIn += earlier.bytesIn
        sum.recordsOut += earlier.recordsOut
        sum.bytesOut += earlier.bytesOut
        sum.errors.merge(earlier.errors, uniquingKeysWith: +)
        return sum
    }
}

/// One offset in Kafka Connect's shape: which partition of the source or sink, and where.
public struct ConnectorOffset: Sendable, Equatable, Codable {
    public var partition: [String: ConnectorConfig.Value]
    public var offset: [String: ConnectorConfig.Value]?

    public init(partition: [String: ConnectorConfig.Value], offset: [String: ConnectorConfig.Value]?) {
        self.partition = partition
        self.offset = offset
    }
}
