public import EdgeLogStorage
import Foundation
public import Logging
import Synchronization

/// Runs one processor against the local log, exactly once: it reads its inputs from where it
/// stands, feeds the records to its `StreamProcessor`, and before appending any output it
/// makes a `ProcessorCommit` durable in the processor's commit topic. After a crash or a power
/// cut, recovery restores the last snapshot, replays the commits since (processing is
/// deterministic, so it comes to the same state and the same outputs) and appends whichever
/// of the last commit's outputs had not reached the log. A snapshot every few seconds bounds
/// the replay, so a restart costs about the same whatever the length of the history.
///
/// One task owns a runner (`run`); others read `status`.
public final class ProcessorRunner: @unchecked Sendable {
    public struct Tuning: Sendable {
        /// Records read from one input partition per cycle.
        public var cycleRecords = 4096
        public var cycleBytes = 1 << 20
        /// A snapshot once this much time and some input have passed since the last…
        public var snapshotIntervalMs: Int64 = 10_000
        /// …or once this many records were processed (but at most one a second), which
        /// bounds what a restart has to replay.
        public var snapshotRecords: Int64 = 200_000
        /// How long a cycle with nothing to read waits for input before it looks again.
        public var pollMs: Int64 = 1_000
        public var retryBackoffMs: Int64 = 1_000
        /// Tests only: asked at each point where a crash would leave work half done; true makes
        /// the runner fail there and start over from what is on disk, as after a kill -9.
        public var crashAt: (@Sendable (CrashPoint) -> Bool)?
        /// Tests only: a pause between a durable commit and its outputs, so that a test's
        /// kill -9 lands there often (the daemon reads EDGELOG_STREAMS_TEST_COMMIT_PAUSE_MS).
        public var pauseAfterCommitMs: Int64 = 0
        public init() {}
    }

    public enum CrashPoint: Sendable, Equatable {
        /// The commit is durable, no output appended.
        case afterCommit
        /// Some of a commit's output partitions appended, not all.
        case betweenOutputPartitions
        /// The old snapshot renamed aside, the new one not written.
        case midSnapshot
    }

    struct InjectedCrash: Error, CustomStringConvertible {
        var point: CrashPoint
        var description: String { "injected crash at \(point)" }
    }

    func crash(_ point: CrashPoint) throws {
        if let crashAt = tuning.crashAt, crashAt(point) { throw InjectedCrash(point: point) }
    }

    public let name: String
    public let plan: ProcessorPlan
    let manager: LogManager
    let tuning: Tuning
    let logger: Logger
    let wallClock: @Sendable () -> Int64
    /// `<data>/.streams/<name>`: its snapshots.
    let directory: String
    let compressor = BatchCompressor()

    // Owned by the running task.
    var processor: StreamProcessor
    var inputs: [StreamProcessor.InputPartition] = []
    var positions: [StreamProcessor.InputPartition: Int64] = [:]
    var lastInputMs: [StreamProcessor.InputPartition: Int64] = [:]
    var lastIdleMarkMs: [StreamProcessor.InputPartition: Int64] = [:]
    var pendingSteps: [ProcessorCommit.Step] = []
    /// Inputs stopped at the state bound (ON_STATE_FULL = 'pause'): not waited on, since
    /// their next record is there already.
    var pausedInputs: Set<StreamProcessor.InputPartition> = []
    var recordsSinceSnapshot: Int64 = 0
    var lastSnapshotAt = ContinuousClock.now
    var commitLog: PartitionLog?

    let shared = Mutex(ProcessorStatus())

    public static func commitTopic(for name: String) -> String { "_edgelog.streams.\(name)" }

    public init(
        plan: ProcessorPlan, manager: LogManager, tuning: Tuning = Tuning(), logger: Logger,
        wallClock: @escaping @Sendable () -> Int64 = { wallClockMs() }
    ) {
        self.name = plan.name
        self.plan = plan
        self.manager = manager
        self.tuning = tuning
        self.wallClock = wallClock
        self.directory = manager.configuration.dataDirectory + "/.streams/\(plan.name)"
        var logger = logger
        logger[metadataKey: "edgelog.processor"] = "\(plan.name)"
        self.logger = logger
        self.processor = StreamProcessor(plan: plan)
        shared.withLock {
            $0.name = plan.name
            $0.query = plan.query
            $0.outputTopic = plan.outputTopic
            $0.inputs = plan.inputs
            $0.estimatedStateBytes = plan.estimatedStateBytes
        }
    }

    /// What the processor is doing, for the API, the CLI and /metrics.
    public var status: ProcessorStatus { shared.withLock { $0 } }

    /// Until cancelled: waits for its inputs, recovers, then processes. A failure (a full disk,
    /// a corrupt record) is reported in `status` and retried after a pause from a fresh
    /// recovery, which is what makes a retry exact.
    public func run() async {
        while !Task.isCancelled {
            do {
                try await waitForInputs()
                try await recover()
                setPhase(.running, error: nil)
                while !Task.isCancelled {
                    let progressed = try await cycle()
                    try await maybeSnapshot(force: false)
                    publish()
                    if !progressed { await waitForInput() }
                }
                // A clean stop leaves a snapshot, so the next start replays nothing.
                try? await maybeSnapshot(force: true)
            } catch is CancellationError {
                break
            } catch {
                logger.error("processor failed; retrying from its last commit", metadata: ["edgelog.error": "\(error)"])
                setPhase(.failed, error: "\(error)")
                try? await Task.sleep(for: .milliseconds(tuning.retryBackoffMs))
            }
        }
        setPhase(.stopped, error: nil)
    }

    func setPhase(_ phase: ProcessorStatus.Phase, error: String?) {
        shared.withLock {
            $0.phase = phase
            if let error {
                $0.lastError = error
                $0.errors += 1
            } else if phase == .running {
                $0.lastError = nil
            }
        }
    }

    /// Waits until every input topic exists (a topic can be auto-created by its first record),
    /// then creates the output topics that are missing.
    func waitForInputs() async throws {
        var reported = false
        while true {
            let missing = plan.inputs.filter { manager.topic($0) == nil }
            if missing.isEmpty { break }
            if !reported {
                logger.notice("waiting for input topics", metadata: ["edgelog.topics": "\(missing.joined(separator: ","))"])
                setPhase(.waitingForInput, error: nil)
                reported = true
            }
            try await Task.sleep(for: .milliseconds(500))
        }
        let output = try ensureTopic(plan.outputTopic)
        if output.config.flush != .always { warnNotFsynced(output) }
    }

    func warnNotFsynced(_ topic: Topic) {
        logger.warning(
            "an output topic is not fsynced on every append: a power cut can lose outputs of the last second",
            metadata: ["edgelog.topic": "\(topic.name)", "edgelog.flush": "\(topic.config.flush)"])
    }

    /// An output topic, made when missing (the side and dead-letter topics on first use) with
    /// one partition, fsynced on every append: exactly once across power cuts needs each output
    /// durable before the next commit counts on it.
    @discardableResult
    func ensureTopic(_ name: String) throws -> Topic {
        if let topic = manager.topic(name) { return topic }
        var config = manager.configuration.defaults
        config.flush = .always
        // Made at the same moment by another part (a producer's auto-create): that one is used.
        _ = try? manager.createTopic(name, partitions: 1, config: config)
        guard let topic = manager.topic(name) else { throw StorageError.unknownTopic(name) }
        if topic.config.flush != .always { warnNotFsynced(topic) }
        return topic
    }

    func publish() {
        let metrics = processor.metrics
        var lag: Int64 = 0
        var positionList: [ProcessorStatus.InputPosition] = []
        for input in inputs {
            let next = positions[input] ?? 0
            let end = (try? manager.partition(topic: input.topic, input.partition).logEndOffset) ?? next
            lag += max(0, end - next)
            positionList.append(.init(topic: input.topic, partition: input.partition, nextOffset: next, endOffset: end))
        }
        shared.withLock {
            $0.metrics = metrics
            $0.lagRecords = lag
            $0.wallClockAtPublishMs = wallClock()
            $0.positions = positionList
        }
    }
}
