import Logging
public import NIOCore
import Synchronization

/// The result of an append: the offsets the log gave the appended records.
public struct AppendResult: Sendable, Equatable {
    public var baseOffset: Int64
    public var lastOffset: Int64
    public var recordCount: Int { Int(lastOffset - baseOffset + 1) }
}

/// One partition of a topic: an ordered list of segments in `<data>/<topic>-<partition>/`,
/// one appender thread that owns all writes, and readers on any thread.
///
/// Offsets are dense and monotonic. Readers only ever see batches that the flush policy has
/// made durable ("committed"), so a record that was read can never disappear in a crash.
///
/// As a library it logs at info and below; what an operator must see comes back as values:
/// the `RecoveryReport` of `open`, `fenceReason`, and the errors of appends.
public final class PartitionLog: @unchecked Sendable {
    public let topic: String
    public let partition: Int32
    public let directory: String
    public let config: LogConfig
    let logger: Logger
    let budget: DiskBudget?

    struct State {
        var segments: [LogSegment]
        var logStartOffset: Int64
        /// End of the committed (acknowledged, readable) log.
        var committedOffset: Int64
        var committedPosition: Int64
        /// Offset below which retention must not delete (data an upstream still needs).
        var retentionFloor: Int64?
        /// The lowest offset some upstream (required or not) has not acknowledged; nil when
        /// none replicates this partition.
        var replicatedUpTo: Int64?
        /// Told of deletions that lose data (`DeletedRecords`); set by the LogManager.
        var deletionObserver: (@Sendable (DeletedRecords) -> Void)?
        var fenceReason: String?
        var recoveryPoint: RecoveryPoint
        var checkpointedLogStart: Int64
    }

    /// Everything up to `position` of segment `segment` (offsets below `offset`) is on disk.
    /// `maxTimestamp` is that segment's largest timestamp up to there, which the sparse time
    /// index alone cannot tell when recovery resumes mid-segment.
    struct RecoveryPoint: Equatable {
        var offset: Int64
        var segment: Int64
        var position: Int64
        var maxTimestamp: Int64

        init(offset: Int64, segment: LogSegment, position: Int64) {
            self.offset = offset
            self.segment = segment.baseOffset
            self.position = position
            self.maxTimestamp = segment.maxTimestamp
        }

        var checkpoint: Checkpoint {
            Checkpoint(["offset": offset, "segment": segment, "position": position, "max-timestamp": maxTimestamp])
        }
    }

    let state: Mutex<State>
    let appender = Appender()
    let commits = CommitSignal()

    package static let recoveryPointFile = "recovery-point.checkpoint"
    package static let logStartFile = "log-start.checkpoint"

    public var name: String { "\(topic)-\(partition)" }

    /// Offsets of the committed log.
    public struct Offsets: Sendable, Equatable {
        public var logStartOffset: Int64
        public var logEndOffset: Int64
    }

    public var offsets: Offsets {
        state.withLock { Offsets(logStartOffset: $0.logStartOffset, logEndOffset: $0.committedOffset) }
    }

    public var logStartOffset: Int64 { offsets.logStartOffset }
    public var logEndOffset: Int64 { offsets.logEndOffset }

    /// Bytes of all segments.
    public var sizeBytes: Int64 { state.withLock { $0.segments } .reduce(0) { $0 + $1.sizeBytes } }

    public var segments: [LogSegment] { state.withLock { $0.segments } }

    /// Why the partition refuses appends, or nil when it accepts them.
    public var fenceReason: String? { state.withLock { $0.fenceReason } }

    public var retentionFloor: Int64? {
        get { state.withLock { $0.retentionFloor } }
        set { state.withLock { $0.retentionFloor = newValue } }
    }

    /// The lowest offset some upstream has not acknowledged (set by replication), so that a
    /// deletion can tell whether it loses data nobody upstream has.
    public var replicatedUpTo: Int64? {
        get { state.withLock { $0.replicatedUpTo } }
        set { state.withLock { $0.replicatedUpTo = newValue } }
    }

    var deletionObserver: (@Sendable (DeletedRecords) -> Void)? {
        get { state.withLock { $0.deletionObserver } }
        set { state.withLock { $0.deletionObserver = newValue } }
    }

    init(
        topic: String, partition: Int32, directory: String, config: LogConfig, budget: DiskBudget?,
        logger: Logger, state: State
    ) {
        self.topic = topic
        self.partition = partition
        self.directory = directory
        self.config = config
        self.budget = budget
        var logger = logger
        logger[metadataKey: "edgelog.partition"] = "\(topic)-\(partition)"
        self.logger = logger
        self.state = Mutex(state)
        appender.start(partition: self)
    }

    // MARK: Reading

    /// Whole stored batches starting with the one that holds `offset`, up to `maxBytes` (but at
    /// least one batch), from a single segment; empty at the log end. The first batch may start
    /// below `offset`, as in a Kafka fetch response.
    public func read(from offset: Int64, maxBytes: Int) throws(StorageError) -> ByteBuffer {
        guard let (segment, position, limit) = try batchHolding(offset) else { return ByteBuffer() }
        return try segment.readBatches(from: position, maxBytes: maxBytes, limit: limit)
    }

    /// The segment, position and committed limit of the batch that holds `offset`; nil at the
    /// log end.
    private func batchHolding(_ offset: Int64) throws(StorageError) -> (LogSegment, Int64, Int64)? {
        let (segments, start, end, endPosition) = state.withLock {
            ($0.segments, $0.logStartOffset, $0.committedOffset, $0.committedPosition)
        }
        guard offset >= start, offset <= end else {
            throw .offsetOutOfRange(offset: offset, logStart: start, logEnd: end)
        }
        guard offset < end else { return nil }
        guard var index = Self.segmentIndex(containing: offset, in: segments) else {
            throw .offsetOutOfRange(offset: offset, logStart: start, logEnd: end)
        }
        while index < segments.count {
            let segment = segments[index]
            let limit = endPositionOf(index, segments, endPosition)
            if let position = try segment.position(of: offset, limit: limit) { return (segment, position, limit) }
            index += 1
        }
        return nil
    }

    /// Where the batches `read(from:maxBytes:)` returns lie on disk, without reading them: the
    /// span a fetch sends with sendfile. nil at the log end.
    public func locate(from offset: Int64, maxBytes: Int) throws(StorageError) -> StoredSpan? {
        guard let (segment, position, limit) = try batchHolding(offset) else { return nil }
        return try segment.locateBatches(from: position, maxBytes: maxBytes, limit: limit)
    }

    /// The idempotent-producer fields of the batches in about the last `bytes` of the log,
    /// oldest first: what a broker needs after a restart to recognise the retries of batches
    /// it had already stored.
    public func producerBatches(inLast bytes: Int64) throws(StorageError) -> [ProducerBatch] {
        let (segments, endPosition) = state.withLock { ($0.segments, $0.committedPosition) }
        var remaining = bytes
        var first = segments.count - 1
        while first > 0 && remaining > endPositionOf(first, segments, endPosition) {
            remaining -= endPositionOf(first, segments, endPosition)
            first -= 1
        }
        var batches: [ProducerBatch] = []
        for index in first..<segments.count {
            let limit = endPositionOf(index, segments, endPosition)
            let start = index == first ? max(0, limit - remaining) : 0
            batches += try segments[index].producerBatches(from: start, limit: limit)
        }
        return batches
    }

    private func endPositionOf(_ index: Int, _ segments: [LogSegment], _ endPosition: Int64) -> Int64 {
        index == segments.count - 1 ? endPosition : segments[index].sizeBytes
    }

    /// Stored bytes from the batch holding `offset` to the committed end: how much a reader at
    /// `offset` (a lagging upstream) still has to move. Zero at or past the end.
    public func bytes(from offset: Int64) -> Int64 {
        let (segments, end, endPosition) = state.withLock { ($0.segments, $0.committedOffset, $0.committedPosition) }
        guard offset < end, let first = Self.segmentIndex(containing: max(offset, segments[0].baseOffset), in: segments) else {
            return 0
        }
        var total: Int64 = 0
        for index in first..<segments.count {
            let limit = endPositionOf(index, segments, endPosition)
            let start = index == first ? ((try? segments[index].position(of: offset, limit: limit)) ?? nil) ?? limit : 0
            total += limit - start
        }
        return total
    }

    /// Waits until the log end passes `offset` (there is something to read at `offset`), at
    /// most `timeout`. Returns the log end offset then.
    @discardableResult
    public func waitForData(at offset: Int64, timeout: Duration) async -> Int64 {
        await commits.wait(timeout: timeout) { logEndOffset > offset }
        return logEndOffset
    }

    /// Waits until any of the partitions has something to read at its offset, at most
    /// `timeout`, or until the task is cancelled. One registration per partition and one
    /// timer for the whole wait: a long poll over a hundred idle partitions costs no task per
    /// partition.
    public static func waitForAny(_ positions: [(log: PartitionLog, offset: Int64)], timeout: Duration) async {
        let wakeup = Wakeup()
        var subscriptions: [(CommitSignal, UInt64)] = []
        subscriptions.reserveCapacity(positions.count)
        for (log, offset) in positions {
            guard let id = log.commits.subscribe(isReady: { log.logEndOffset > offset }, wake: wakeup.fire) else {
                wakeup.fire()
                break
            }
            subscriptions.append((log.commits, id))
        }
        let timer = Task {
            try? await Task.sleep(for: timeout)
            wakeup.fire()
        }
        await withTaskCancellationHandler {
            await wakeup.wait()
        } onCancel: {
            wakeup.fire()
        }
        timer.cancel()
        for (signal, id) in subscriptions { signal.unsubscribe(id) }
    }

    /// Decoded records from `offset` on, at most `maxRecords`, reading at most about `maxBytes`
    /// of stored batches.
    public func readRecords(
        from offset: Int64, maxRecords: Int = .max, maxBytes: Int = 1024 * 1024, compressor: BatchCompressor
    ) throws(StorageError) -> [Record] {
        var records: [Record] = []
        var next = offset
        var budget = maxBytes
        while records.count < maxRecords, budget > 0 {
            var bytes = try read(from: next, maxBytes: budget)
            guard bytes.readableBytes > 0 else { break }
            budget -= bytes.readableBytes
            // Stops decoding once `maxRecords` are in hand: a read of `maxBytes` can hold many
            // more batches than a small request needs, and each one costs a decompression.
            while records.count < maxRecords, let size = RecordBatch.frameSize(in: bytes, at: bytes.readerIndex),
                let slice = bytes.readSlice(length: size)
            {
                let batch = try RecordBatch(validating: slice)
                try batch.verifyChecksum()
                var iterator = try batch.records(using: compressor)
                while records.count < maxRecords, let record = try iterator.next() {
                    if record.offset >= next { records.append(record) }
                }
                next = max(next, batch.nextOffset)
            }
        }
        return records
    }

    /// The first offset whose record timestamp is at least `timestamp`; the log end offset when
    /// every record is older (Kafka's ListOffsets answer).
    public func offset(forTimestamp timestamp: Int64, compressor: BatchCompressor) throws(StorageError) -> Int64 {
        let (segments, end, endPosition) = state.withLock { ($0.segments, $0.committedOffset, $0.committedPosition) }
        for (index, segment) in segments.enumerated() {
            let isLast = index == segments.count - 1
            guard isLast || segment.maxTimestamp >= timestamp else { continue }
            let limit = isLast ? endPosition : segment.sizeBytes
            if let offset = try segment.offset(forTimestamp: timestamp, limit: limit, compressor: compressor) {
                return offset
            }
        }
        return end
    }

    static func segmentIndex(containing offset: Int64, in segments: [LogSegment]) -> Int? {
        segments.floorIndex(offset, by: \.baseOffset)
    }

    // MARK: Retention

    /// Deletes segments that retention by age and size allows (never the active one, never one
    /// holding offsets at or above the retention floor). Returns the bytes freed.
    @discardableResult
    public func applyRetention(nowMs: Int64) -> Int64 {
        var freed: Int64 = 0
        if let retentionMs = config.retentionMs {
            freed += deleteOldSegments(cause: .retentionUnreplicated) { segment, _ in
                nowMs - segment.retentionTimestampMs > retentionMs
            }
        }
        if let retentionBytes = config.retentionBytes {
            // Kafka's rule: delete the oldest segment while what remains is still at least
            // retentionBytes.
            var total = sizeBytes
            freed += deleteOldSegments(cause: .retentionUnreplicated) { segment, _ in
                guard total - segment.sizeBytes >= retentionBytes else { return false }
                total -= segment.sizeBytes
                return true
            }
        }
        return freed
    }

    /// Deletes the oldest segment if the floor allows it: for the disk budget's drop-oldest.
    func deleteOldestSegment() -> Int64 {
        var done = false
        return deleteOldSegments(cause: .diskBudget) { _, _ in
            defer { done = true }
            return !done
        }
    }

    /// Deletes leading segments while `shouldDelete` says so, stopping at the first it refuses,
    /// at the active segment and at the retention floor. What it deletes is reported to the
    /// deletion observer when it is a loss: always for the disk budget, and for retention when
    /// some upstream had not acknowledged it.
    private func deleteOldSegments(cause: DeletedRecords.Cause, _ shouldDelete: (LogSegment, Int) -> Bool) -> Int64 {
        let (removed, loss, observer) = state.withLock { state -> ([LogSegment], DeletedRecords?, (@Sendable (DeletedRecords) -> Void)?) in
            var removed: [LogSegment] = []
            while state.segments.count > 1 {
                let segment = state.segments[0]
                let nextBase = state.segments[1].baseOffset
                if let floor = state.retentionFloor, nextBase > floor { break }
                guard shouldDelete(segment, removed.count) else { break }
                removed.append(state.segments.removeFirst())
                state.logStartOffset = nextBase
            }
            guard let first = removed.first else { return ([], nil, nil) }
            let lastOffset = state.logStartOffset - 1
            let unreplicatedFrom = state.replicatedUpTo.flatMap { $0 <= lastOffset ? max($0, first.baseOffset) : nil }
            guard cause == .diskBudget || unreplicatedFrom != nil else { return (removed, nil, nil) }
            let loss = DeletedRecords(
                cause: cause, topic: topic, partition: partition, firstOffset: first.baseOffset, lastOffset: lastOffset,
                fromTimestampMs: -1, toTimestampMs: removed.map(\.maxTimestamp).max() ?? -1, unreplicatedFrom: unreplicatedFrom)
            return (removed, loss, state.deletionObserver)
        }
        guard !removed.isEmpty else { return 0 }
        writeLogStartCheckpoint()
        if var loss, let observer {
            // The first deleted batch's timestamp, read before its file goes.
            let head = try? removed[0].log.read(at: 0, length: RecordBatch.Layout.headerSize)
            loss.fromTimestampMs =
                head?.getInteger(at: head!.readerIndex + RecordBatch.Layout.baseTimestamp, as: Int64.self) ?? removed[0].rollTimestampMs
            observer(loss)
        }
        var freed: Int64 = 0
        for segment in removed {
            // Open readers keep the descriptor, so unlinking under them is safe.
            for path in [segment.logPath, segment.indexPath, segment.timeIndexPath] {
                freed += FileSystem.size(path) ?? 0
                do { try FileSystem.remove(path) } catch {
                    logger.info("could not delete \(path): \(error)")
                }
            }
            logger.info(
                "deleted segment",
                metadata: ["edgelog.segment": "\(segment.logPath)", "edgelog.bytes": "\(segment.sizeBytes)"])
        }
        budget?.release(freed)
        return freed
    }

    func writeLogStartCheckpoint() {
        let start = state.withLock { $0.logStartOffset }
        do {
            try Checkpoint(["offset": start]).write(to: directory + "/" + Self.logStartFile)
            state.withLock { $0.checkpointedLogStart = start }
        } catch {
            logger.info("could not write the log start checkpoint: \(error)")
        }
    }

    // MARK: Closing

    /// Drains pending appends, flushes, writes the recovery point (so the next open scans
    /// nothing) and stops the appender thread. Idempotent.
    public func close() {
        appender.close()
        commits.notifyAll()
    }
}
