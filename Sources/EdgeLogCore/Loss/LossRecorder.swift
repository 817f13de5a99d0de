public import EdgeLogStorage
public import Logging
import Metrics
public import ServiceLifecycle
import Synchronization

/// Appends a loss marker to `_edgelog.loss` (created with the first one) whenever data is dropped by policy or by a peer
/// (`LossMarker.Reason`), counts it (`edgelog_lost_records_total{reason}`,
/// `edgelog_loss_markers_total{reason}`, `edgelog status`) and logs it. The topic replicates
/// upstream like any other, so the central side can tell a gap from a quiet sensor.
///
/// Markers are queued and appended by the service's own task: a deletion is reported from the
/// appender thread that is making room for an append, which must not wait on an append itself.
/// A marker that cannot be appended (a full disk) is retried until it can, oldest first.
public final class LossRecorder: Service, Sendable {
    public static let topic = "_edgelog.loss"
    /// Markers waiting for the log beyond this are dropped from the queue (and still counted and logged).
    static let queueLimit = 10_000

    public struct Totals: Sendable, Equatable {
        public var markers: Int64 = 0
        /// Records lost: the count, or the bound where only a bound is known (broker drops).
        public var records: Int64 = 0
        public var lastAtMs: Int64? = nil
    }

    let manager: LogManager
    let logger: Logger
    private let markers: AsyncStream<LossMarker>
    private let queue: AsyncStream<LossMarker>.Continuation
    private let totals = Mutex<[LossMarker.Reason: Totals]>([:])

    public init(manager: LogManager, logger: Logger) throws {
        self.manager = manager
        self.logger = logger
        (markers, queue) = AsyncStream.makeStream(bufferingPolicy: .bufferingOldest(Self.queueLimit))
        manager.observeDeletions { [weak self] deleted in self?.record(LossMarker(deleted)) }
    }

    /// Counts, logs and queues `marker` for the loss topic. Safe from any thread.
    public func record(_ marker: LossMarker) {
        totals.withLock { totals in
            totals[marker.reason, default: Totals()].markers += 1
            totals[marker.reason, default: Totals()].records += marker.count ?? marker.countAtMost ?? 0
            totals[marker.reason, default: Totals()].lastAtMs = marker.detectedAtMs
        }
        let dimensions = [("reason", marker.reason.rawValue)]
        Counter(label: "edgelog_loss_markers_total", dimensions: dimensions).increment()
        if let count = marker.count ?? marker.countAtMost {
            Counter(label: "edgelog_lost_records_total", dimensions: dimensions).increment(by: Int(count))
        }
        var metadata: Logger.Metadata = ["edgelog.loss.reason": "\(marker.reason.rawValue)"]
        if let topic = marker.topic { metadata["edgelog.topic"] = "\(topic)-\(marker.partition ?? 0)" }
        if let first = marker.firstOffset, let last = marker.lastOffset { metadata["edgelog.offsets"] = "\(first)...\(last)" }
        if let count = marker.count ?? marker.countAtMost { metadata["edgelog.records"] = "\(marker.count == nil ? "at most " : "")\(count)" }
        logger.warning("data lost: \(marker.detail); a marker goes to \(Self.topic)", metadata: metadata)
        if case .dropped = queue.yield(marker) {
            logger.error("loss marker queue full: this marker is counted and logged but not written to \(Self.topic)")
        }
    }

    /// What recovery cut off a partition at start: torn or corrupt tails, and offsets missing
    /// between segments.
    public func recordRecovery(_ report: RecoveryReport) {
        guard let dash = report.partition.lastIndex(of: "-"), let partition = Int32(report.partition[report.partition.index(after: dash)...])
        else { return }
        let topic = String(report.partition[..<dash])
        for cut in report.truncations {
            record(
                LossMarker(
                    reason: .recoveryTruncated, topic: topic, partition: partition, firstOffset: cut.firstLostOffset,
                    detail: "recovery cut \(cut.bytesRemoved) bytes off \(cut.segment) at byte \(cut.position) (\(cut.reason)): offsets from \(cut.firstLostOffset) on that were there are gone"))
        }
        for gap in report.offsetGaps {
            record(
                LossMarker(
                    reason: .recoveryTruncated, topic: topic, partition: partition, firstOffset: gap.lowerBound, lastOffset: gap.upperBound,
                    count: gap.upperBound - gap.lowerBound + 1, detail: "recovery found offsets \(gap.lowerBound)...\(gap.upperBound) missing between two segments"))
        }
    }

    /// Totals by reason since the daemon started: for `edgelog status`.
    public var totalsByReason: [LossMarker.Reason: Totals] { totals.withLock { $0 } }

    public func run() async throws {
        await withGracefulShutdownHandler {
            for await marker in markers { await append(marker) }
        } onGracefulShutdown: {
            self.queue.finish()  // what is queued is still appended; the log closes after this service
        }
    }

    /// The loss topic, created with the first marker: a box that never lost anything has none,
    /// and its upstreams see no extra topic.
    private func lossTopic() throws(StorageError) -> Topic {
        if let topic = manager.topic(Self.topic) { return topic }
        do { return try manager.createTopic(Self.topic, partitions: 1, config: manager.configuration.defaults) } catch .topicAlreadyExists {
            guard let topic = manager.topic(Self.topic) else { throw .unknownTopic(Self.topic) }
            return topic
        }
    }

    /// Appends one marker, retrying with backoff while the log refuses it (unless shutting down).
    private func append(_ marker: LossMarker) async {
        var delayMs: Int64 = 100
        while true {
            do {
                guard let partition = try lossTopic().partitions.first else { throw StorageError.unknownTopic(Self.topic) }
                _ = try await partition.append([marker.record])
                return
            } catch {
                logger.error(
                    "cannot write a loss marker to \(Self.topic); retrying", metadata: ["edgelog.error": "\(error)", "edgelog.loss.reason": "\(marker.reason.rawValue)"])
                if Task.isShuttingDownGracefully { return }
                try? await Task.sleep(for: .milliseconds(delayMs))
                delayMs = min(delayMs * 2, 30_000)
            }
        }
    }
}
