/// A processor as the API, `edgelog streams describe` and /metrics see it.
public struct ProcessorStatus: Sendable, Equatable {
    public enum Phase: String, Sendable {
        case starting = "STARTING"
        case waitingForInput = "WAITING_FOR_INPUT"
        case recovering = "RECOVERING"
        case running = "RUNNING"
        /// Stopped by an error; retried from its last commit.
        case failed = "FAILED"
        case stopped = "STOPPED"
    }

    public struct InputPosition: Sendable, Equatable {
        public var topic: String
        public var partition: Int32
        public var nextOffset: Int64
        public var endOffset: Int64
    }

    public var name = ""
    public var query = ""
    public var inputs: [String] = []
    public var outputTopic = ""
    /// The planner's estimate of the state at its bound (see `ProcessorPlan.estimatedKeyBytes`).
    public var estimatedStateBytes = 0
    public var phase = Phase.starting
    public var lastError: String?
    public var errors: Int64 = 0
    public var metrics = ProcessorMetrics()
    public var positions: [InputPosition] = []
    /// Records in the inputs not yet processed.
    public var lagRecords: Int64 = 0
    /// Seconds behind: the wall clock when this status was made minus the watermark (the
    /// input's event time the processor has reached, less its out-of-orderness).
    public var wallClockAtPublishMs: Int64 = 0
    public var commits: Int64 = 0
    public var lastCommitMs: Double?
    public var snapshots: Int64 = 0
    public var lastSnapshotBytes: Int = 0
    /// The last recovery: commits replayed, outputs found missing and appended, and its time.
    public var replayedCommits: Int64 = 0
    public var restoredOutputs: Int64 = 0
    public var recoveryMs: Double?
    /// Replayed output that did not match what the log holds (should stay 0: processing is
    /// deterministic; a mismatch means the log was changed under the processor).
    public var replayMismatches: Int64 = 0
    /// Input records deleted (by retention) before the processor read them.
    public var skippedInputRecords: Int64 = 0

    public init() {}
}
