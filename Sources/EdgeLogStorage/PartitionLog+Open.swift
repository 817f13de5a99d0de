public import Logging

/// What opening a partition found and repaired.
public struct RecoveryReport: Sendable, Equatable, CustomStringConvertible {
    /// Bytes cut from the end of a segment because a batch there was torn or corrupt.
    public struct Truncation: Sendable, Equatable {
        public var segment: String
        /// Where the cut was made: the end of the last valid batch.
        public var position: Int64
        public var bytesRemoved: Int64
        /// The first offset that is no longer in the log because of the cut.
        public var firstLostOffset: Int64
        public var reason: String
    }

    public var partition: String
    /// The checkpoint could not be used and every segment was scanned.
    public var checkpointProblem: String?
    public var segmentsLoaded = 0
    public var segmentsScanned = 0
    public var batchesScanned = 0
    public var bytesScanned: Int64 = 0
    public var rebuiltIndexes: [String] = []
    public var truncations: [Truncation] = []
    /// Offsets missing between two segments after a cut in the middle of the log.
    public var offsetGaps: [ClosedRange<Int64>] = []
    public var deletedSegments: [String] = []
    public var removedFiles: [String] = []
    public var logStartOffset: Int64 = 0
    public var logEndOffset: Int64 = 0

    /// Whether recovery had to throw bytes away.
    public var cutData: Bool { !truncations.isEmpty || !deletedSegments.isEmpty }

    public var description: String {
        var parts = ["\(partition): offsets [\(logStartOffset), \(logEndOffset))"]
        parts.append("\(segmentsLoaded) segments loaded, \(segmentsScanned) scanned (\(batchesScanned) batches, \(bytesScanned) bytes)")
        if let checkpointProblem { parts.append("full recovery: \(checkpointProblem)") }
        for path in rebuiltIndexes { parts.append("rebuilt index of \(path)") }
        for cut in truncations {
            parts.append(
                "truncated \(cut.segment) at byte \(cut.position): \(cut.bytesRemoved) bytes from offset \(cut.firstLostOffset) on (\(cut.reason))")
        }
        for gap in offsetGaps { parts.append("offsets \(gap.lowerBound)...\(gap.upperBound) are missing") }
        for path in deletedSegments { parts.append("deleted \(path)") }
        return parts.joined(separator: "; ")
    }
}

extension PartitionLog {
    /// Opens (or creates) the partition in `directory` and recovers it: segments past the
    /// recovery point are scanned batch by batch (length, magic, CRC, offsets), a torn or
    /// corrupt tail is cut off and reported, and missing or damaged indexes are rebuilt. A
    /// missing or corrupt recovery point means every segment is scanned.
    public static func open(
        topic: String, partition: Int32, directory: String, config: LogConfig,
        budget: DiskBudget? = nil, logger: Logger
    ) throws(StorageError) -> (PartitionLog, RecoveryReport) {
        let (state, report) = try recoverFiles(topic: topic, partition: partition, directory: directory, config: config, logger: logger)
        let log = PartitionLog(
            topic: topic, partition: partition, directory: directory, config: config, budget: budget, logger: logger,
            state: state)
        log.writeRecoveryPoint()
        if report.cutData || report.checkpointProblem != nil || !report.rebuiltIndexes.isEmpty {
            logger.info("recovered partition", metadata: ["edgelog.report": "\(report)"])
        } else {
            logger.debug("opened partition", metadata: ["edgelog.report": "\(report)"])
        }
        return (log, report)
    }

    /// Recovery proper: the partition's state as its files allow, repairing them on the way.
    /// Used by `open` and, for a partition fenced after a failed write, by `recoverFromFence`.
    static func recoverFiles(
        topic: String, partition: Int32, directory: String, config: LogConfig, logger: Logger
    ) throws(StorageError) -> (State, RecoveryReport) {
        var report = RecoveryReport(partition: "\(topic)-\(partition)")
        try FileSystem.createDirectory(directory)
        let names = try FileSystem.list(directory)
        let now = wallClockMs()

        // Leftovers of interrupted atomic writes and deletions.
        for name in names where name.hasSuffix(".tmp") || name.hasSuffix(".deleted") {
            try FileSystem.remove(directory + "/" + name)
            report.removedFiles.append(name)
        }
        let bases = names.compactMap { LogSegment.baseOffset(fromFileName: $0) }.sorted()
        let baseSet = Set(bases)
        for name in names {
            let indexBase =
                LogSegment.baseOffset(fromFileName: name, suffix: ".index")
                ?? LogSegment.baseOffset(fromFileName: name, suffix: ".timeindex")
            if let indexBase, !baseSet.contains(indexBase) {
                try FileSystem.remove(directory + "/" + name)
                report.removedFiles.append(name)
            }
        }

        var recoveryPoint: Checkpoint? = nil
        do {
            recoveryPoint = try Checkpoint.read(from: directory + "/" + recoveryPointFile)
            if recoveryPoint == nil && !bases.isEmpty { report.checkpointProblem = "no recovery point checkpoint" }
        } catch {
            report.checkpointProblem = error.description
            logger.info("recovering every segment", metadata: ["edgelog.reason": "\(error)"])
        }
        var logStartCheckpoint: Int64? = nil
        do {
            logStartCheckpoint = try Checkpoint.read(from: directory + "/" + logStartFile)?["offset"]
        } catch {
            logger.info("ignoring the log start checkpoint", metadata: ["edgelog.reason": "\(error)"])
        }

        var segments: [LogSegment] = []
        for base in bases {
            segments.append(
                try LogSegment(directory: directory, baseOffset: base, indexIntervalBytes: config.indexIntervalBytes, nowMs: now))
        }
        if segments.isEmpty {
            let base = logStartCheckpoint ?? 0
            segments.append(
                try LogSegment(directory: directory, baseOffset: base, indexIntervalBytes: config.indexIntervalBytes, nowMs: now))
            try FileSystem.syncDirectory(directory)
        }

        // Where the scan starts: the recovery point, if it names a segment that has those bytes.
        var scanFrom = (index: 0, position: Int64(0), offset: segments[0].baseOffset, maxTimestamp: Int64(-1))
        if let point = recoveryPoint, let segmentBase = point["segment"], let position = point["position"],
            let offset = point["offset"], let index = segments.firstIndex(where: { $0.baseOffset == segmentBase })
        {
            let size = try segments[index].log.size()
            if position >= 0, position <= size, offset >= segmentBase {
                scanFrom = (index, position, offset, point["max-timestamp"] ?? -1)
            } else {
                report.checkpointProblem = "recovery point \(segmentBase):\(position) lies past the end of the segment (\(size) bytes)"
            }
        } else if recoveryPoint != nil {
            report.checkpointProblem = "recovery point names no existing segment"
        }

        for index in segments.indices {
            let segment = segments[index]
            if index < scanFrom.index {
                if try segment.load(nextOffset: segments[index + 1].baseOffset) {
                    report.segmentsLoaded += 1
                    continue
                }
                report.rebuiltIndexes.append(segment.logPath)
                logger.info("rebuilding index", metadata: ["edgelog.segment": "\(segment.logPath)"])
            }
            let (position, offset) = index == scanFrom.index ? (scanFrom.position, scanFrom.offset) : (0, segment.baseOffset)
            let knownMaxTimestamp = index == scanFrom.index ? scanFrom.maxTimestamp : -1
            let outcome = try segment.recover(
                from: position, expectedOffset: offset, knownMaxTimestamp: knownMaxTimestamp,
                maxBatchBytes: max(config.maxBatchBytes, 64 << 20))
            report.segmentsScanned += 1
            report.batchesScanned += outcome.batchesScanned
            report.bytesScanned += outcome.validBytes - position + outcome.truncatedBytes
            if let problem = outcome.problem {
                let cut = RecoveryReport.Truncation(
                    segment: segment.logPath, position: outcome.validBytes, bytesRemoved: outcome.truncatedBytes,
                    firstLostOffset: outcome.nextOffset, reason: problem)
                report.truncations.append(cut)
                logger.info(
                    "truncated a torn or corrupt tail",
                    metadata: [
                        "edgelog.segment": "\(cut.segment)", "edgelog.position": "\(cut.position)",
                        "edgelog.bytes": "\(cut.bytesRemoved)", "edgelog.first_lost_offset": "\(cut.firstLostOffset)",
                        "edgelog.reason": "\(problem)",
                    ])
            }
        }

        // Segments must not overlap; a segment whose base lies below its predecessor's end is
        // left over from a failed roll or a copied file and cannot be trusted.
        var kept: [LogSegment] = []
        for segment in segments {
            if let previous = kept.last {
                let end = previous.nextOffset
                if segment.baseOffset < end {
                    try FileSystem.remove(segment.logPath)
                    try FileSystem.remove(segment.indexPath)
                    try FileSystem.remove(segment.timeIndexPath)
                    report.deletedSegments.append(segment.logPath)
                    continue
                }
                if segment.baseOffset > end {
                    report.offsetGaps.append(end...(segment.baseOffset - 1))
                }
            }
            kept.append(segment)
        }
        segments = kept

        // Scanned bytes may still sit only in the page cache of a crashed process's OS: make
        // them durable before the recovery point says so.
        for segment in segments[min(scanFrom.index, segments.count - 1)...] {
            try segment.sync()
        }
        let last = segments.last!
        let end = last.nextOffset
        let start = min(max(logStartCheckpoint ?? segments[0].baseOffset, segments[0].baseOffset), end)
        report.logStartOffset = start
        report.logEndOffset = end
        let state = State(
            segments: segments, logStartOffset: start, committedOffset: end, committedPosition: last.sizeBytes,
            retentionFloor: nil, fenceReason: nil,
            recoveryPoint: RecoveryPoint(offset: end, segment: last, position: last.sizeBytes),
            checkpointedLogStart: start)
        return (state, report)
    }
}
