import NIOCore

/// Offline inspection of a partition directory, like Kafka's kafka-dump-log: `dump` lists every
/// batch (and optionally every record) of every segment, `verify` checks everything a reopen
/// relies on and reports each inconsistency with its file, byte position and a precise message.
///
/// Read-only: files are opened O_RDONLY and nothing is written, truncated, created or removed.
/// No `PartitionLog` is opened, so recovery does not run: the reports describe the bytes on
/// disk, which makes the inspector safe on the directory of a stopped daemon, on a copy, or on a
/// read-only mount. (On the directory of a running daemon it sees a moving target: a batch being
/// written shows up as a torn tail.)
///
/// What `verify` checks, per segment `<base offset>.log`:
/// - framing: a 12-byte offset and length, a length of at least a batch header, a batch that
///   ends inside the file; the scan stops at the first batch it cannot frame, because the
///   position of the next one is then unknown (this is the torn tail recovery cuts off);
/// - each batch: magic 2, the CRC-32C, a known codec, records that decompress and decode, record
///   offsets inside the batch's range, a header max timestamp equal to the records' largest;
/// - offsets: the first batch starts at the file name's base offset, then dense and increasing
///   within and across segments (gaps and overlaps are reported);
/// - `.index` (8-byte entries): a whole number of entries, offsets and positions increasing, and
///   each entry at the start of a batch with that base offset;
/// - `.timeindex` (12-byte entries): a whole number of entries, timestamps and offsets not
///   decreasing, offsets inside the segment, and Kafka's invariant that every record up to the
///   entry's offset has a timestamp of at most the entry's timestamp;
/// - `recovery-point.checkpoint` and `log-start.checkpoint`: they parse (header and CRC-32C), and
///   the recovery point names an existing segment, a batch boundary in it and the offset there.
///
/// Thread safety: the functions share no state; the `BatchCompressor` passed in must not be
/// used by another thread during the call.
public enum LogInspector {
    /// Bytes read from a segment at a time.
    static let chunkBytes = 4 * 1024 * 1024
    /// Largest index file loaded; Kafka's default maximum index size is 10 MiB.
    static let indexBytesMax: Int64 = 64 * 1024 * 1024

    // MARK: Dump

    /// Every segment of the partition in `partitionDirectory`, batch by batch, and its
    /// checkpoints. A torn or unreadable tail becomes a problem of its segment, never an error.
    /// Throws only when the directory cannot be listed.
    public static func dump(
        partitionDirectory directory: String, includeRecords: Bool = false, previewBytes: Int = 64,
        compressor: BatchCompressor = BatchCompressor()
    ) throws(StorageError) -> PartitionDump {
        var dump = PartitionDump(directory: directory)
        for path in try segmentPaths(partitionDirectory: directory) {
            do {
                dump.segments.append(
                    try self.dump(segmentPath: path, includeRecords: includeRecords, previewBytes: previewBytes, compressor: compressor))
            } catch {
                var segment = SegmentDump(path: path, baseOffset: LogSegment.baseOffset(fromFileName: fileName(of: path)))
                segment.problems.append(LogProblem(file: segment.fileName, position: nil, kind: .unreadableFile, message: error.description))
                dump.segments.append(segment)
            }
        }
        dump.checkpoints = checkpoints(partitionDirectory: directory)
        return dump
    }

    /// The `.log` files of a partition directory, full paths in offset order.
    public static func segmentPaths(partitionDirectory directory: String) throws(StorageError) -> [String] {
        try FileSystem.list(directory)
            .compactMap { name in LogSegment.baseOffset(fromFileName: name).map { (base: $0, name: name) } }
            .sorted { $0.base < $1.base }
            .map { directory + "/" + $0.name }
    }

    /// One segment file, batch by batch. Throws only when the file cannot be opened; a read
    /// error part way becomes a problem entry.
    public static func dump(
        segmentPath path: String, includeRecords: Bool = false, previewBytes: Int = 64,
        compressor: BatchCompressor = BatchCompressor()
    ) throws(StorageError) -> SegmentDump {
        let file = try LogFile(readOnlyPath: path)
        var scanner = try SegmentScanner(file: file, fileName: fileName(of: path))
        var dump = SegmentDump(path: path, baseOffset: LogSegment.baseOffset(fromFileName: scanner.fileName))
        dump.sizeBytes = scanner.size
        scan: while true {
            let step: SegmentScanner.Step
            do { step = try scanner.next() } catch {
                dump.problems.append(scanner.problem(.unreadableFile, error.description))
                break scan
            }
            switch step {
            case .end:
                break scan
            case .stop(let problem):
                dump.problems.append(problem)
                break scan
            case .batch(let position, let bytes):
                var batchDump = BatchDump(frame: bytes, position: position)
                let batch: RecordBatch
                do {
                    batch = try RecordBatch(validating: bytes)
                } catch {
                    dump.problems.append(LogProblem(file: scanner.fileName, position: position, kind: .invalidBatch, message: error.description))
                    dump.batches.append(batchDump)
                    continue scan
                }
                if includeRecords {
                    decodeForDump(batch, into: &batchDump, previewBytes: previewBytes, compressor: compressor)
                }
                dump.batches.append(batchDump)
            }
        }
        return dump
    }

    /// The partition's checkpoint files that exist, parsed or with the reason they do not parse.
    public static func checkpoints(partitionDirectory directory: String) -> [CheckpointDump] {
        var result: [CheckpointDump] = []
        for name in [PartitionLog.recoveryPointFile, PartitionLog.logStartFile] {
            switch readCheckpoint(directory + "/" + name) {
            case .missing: break
            case .parsed(let checkpoint): result.append(CheckpointDump(fileName: name, values: checkpoint.values, problem: nil))
            case .failed(let problem): result.append(CheckpointDump(fileName: name, values: nil, problem: problem.message))
            }
        }
        return result
    }

    private static func decodeForDump(
        _ batch: RecordBatch, into dump: inout BatchDump, previewBytes: Int, compressor: BatchCompressor
    ) {
        var records: [RecordDump] = []
        do throws(StorageError) {
            guard let codec = batch.codec else {
                throw StorageError.corruptBatch(reason: "unknown codec \(batch.attributes & RecordBatch.codecMask) in attributes")
            }
            var section = batch.recordsSection
            if codec != .none {
                var plain = ByteBuffer()
                try compressor.decompress(section, codec: codec, into: &plain)
                section = plain
            }
            dump.uncompressedRecordsBytes = section.readableBytes
            var iterator = RecordIterator(batch: batch, records: section)
            while let record = try iterator.next() {
                records.append(RecordDump(record, batch: batch, previewBytes: previewBytes))
            }
        } catch {
            dump.recordsProblem = error.description
        }
        dump.records = records
    }

    // MARK: Verify

    /// Checks every file of the partition in `partitionDirectory` (see the type's comment for
    /// the list). Every inconsistency becomes a problem of the report; throws only when the
    /// directory cannot be listed.
    public static func verify(
        partitionDirectory directory: String, compressor: BatchCompressor = BatchCompressor()
    ) throws(StorageError) -> VerifyReport {
        let names = try FileSystem.list(directory).sorted()
        var report = VerifyReport(directory: directory)
        let bases = names.compactMap { LogSegment.baseOffset(fromFileName: $0) }.sorted()
        let baseSet = Set(bases)

        // Files an open removes: leftovers of atomic writes and deletions, orphaned indexes.
        for name in names {
            if name.hasSuffix(".tmp") || name.hasSuffix(".deleted") {
                report.problems.append(
                    LogProblem(file: name, position: nil, kind: .strayFile, message: "leftover of an interrupted write or deletion; an open removes it"))
            }
            let indexBase =
                LogSegment.baseOffset(fromFileName: name, suffix: ".index")
                ?? LogSegment.baseOffset(fromFileName: name, suffix: ".timeindex")
            if let indexBase, !baseSet.contains(indexBase) {
                report.problems.append(
                    LogProblem(
                        file: name, position: nil, kind: .strayFile,
                        message: "index without a segment: \(LogSegment.fileName(baseOffset: indexBase, suffix: ".log")) does not exist; an open removes it"))
            }
        }

        var segments: [SegmentSummary] = []
        for base in bases {
            let segment = verifySegment(directory: directory, baseOffset: base, compressor: compressor, problems: &report.problems)
            if let previous = segments.last {
                if segment.baseOffset > previous.nextOffset {
                    report.problems.append(
                        LogProblem(
                            file: segment.fileName, position: 0, kind: .offsetGap,
                            message: "offsets \(previous.nextOffset)...\(segment.baseOffset - 1) are missing: \(previous.fileName) ends before offset \(previous.nextOffset) and this segment starts at \(segment.baseOffset)"))
                } else if segment.baseOffset < previous.nextOffset {
                    report.problems.append(
                        LogProblem(
                            file: segment.fileName, position: 0, kind: .offsetOrder,
                            message: "segment base offset \(segment.baseOffset) lies below the end of \(previous.fileName) (next offset \(previous.nextOffset)): the segments overlap"))
                }
            }
            report.segmentCount += 1
            report.batchCount += segment.batches.count
            report.recordCount += segment.recordCount
            report.sizeBytes += segment.fileSize
            if report.firstOffset == nil, let first = segment.batches.first { report.firstOffset = first.baseOffset }
            if let last = segment.batches.last { report.lastOffset = last.lastOffset }
            segments.append(segment)
        }

        checkCheckpoints(directory: directory, segments: segments, problems: &report.problems)
        return report
    }

    /// What the scan of one segment found, for the checks across segments and of checkpoints.
    struct SegmentSummary {
        var fileName: String
        var baseOffset: Int64
        var fileSize: Int64 = 0
        /// End of the last batch the scan could frame.
        var validEnd: Int64 = 0
        /// The offset after the largest offset of the segment; its base offset when empty.
        var nextOffset: Int64
        var recordCount: Int64 = 0
        var batches: [BatchSpan] = []

        /// The batch that starts at or before `position`, by binary search.
        func batch(atOrBefore position: Int64) -> BatchSpan? {
            batches.floorIndex(position, by: \.position).map { batches[$0] }
        }
    }

    /// Where one framed batch lies, from its raw header fields.
    struct BatchSpan {
        var position: Int64
        var size: Int
        var baseOffset: Int64
        var lastOffset: Int64
    }

    private static func verifySegment(
        directory: String, baseOffset: Int64, compressor: BatchCompressor, problems: inout [LogProblem]
    ) -> SegmentSummary {
        let fileName = LogSegment.fileName(baseOffset: baseOffset, suffix: ".log")
        var summary = SegmentSummary(fileName: fileName, baseOffset: baseOffset, nextOffset: baseOffset)
        let indexName = LogSegment.fileName(baseOffset: baseOffset, suffix: ".index")
        let timeIndexName = LogSegment.fileName(baseOffset: baseOffset, suffix: ".timeindex")
        let offsetEntries = loadIndex(
            OffsetIndexEntry.self, directory: directory, fileName: indexName, baseOffset: baseOffset, problems: &problems)
        let timeEntries = loadIndex(
            TimeIndexEntry.self, directory: directory, fileName: timeIndexName, baseOffset: baseOffset, problems: &problems)
        // The time index invariant is checked while the records stream by, so its order is
        // checked first and only entries in order take part.
        var timeCheck = TimeIndexCheck(fileName: timeIndexName)
        if let timeEntries {
            var previous: TimeIndexEntry? = nil
            for (index, entry) in timeEntries.enumerated() {
                if let previous, entry.timestamp < previous.timestamp || entry.offset < previous.offset {
                    problems.append(
                        LogProblem(
                            file: timeIndexName, position: Int64(index * TimeIndexEntry.size), kind: .timeIndexEntry,
                            message: "entry \(index) (timestamp \(entry.timestamp), offset \(entry.offset)) goes back from entry \(index - 1) (timestamp \(previous.timestamp), offset \(previous.offset))"))
                    continue
                }
                timeCheck.entries.append((index, entry))
                previous = entry
            }
        }

        let scanner: SegmentScanner
        do {
            scanner = try SegmentScanner(file: LogFile(readOnlyPath: directory + "/" + fileName), fileName: fileName)
        } catch {
            problems.append(LogProblem(file: fileName, position: nil, kind: .unreadableFile, message: error.description))
            return summary
        }
        summary.fileSize = scanner.size
        scanBatches(scanner, summary: &summary, timeCheck: &timeCheck, compressor: compressor, problems: &problems)

        timeCheck.flush(below: summary.nextOffset)
        problems.append(contentsOf: timeCheck.problems)
        if let timeEntries {
            for (index, entry) in timeEntries.enumerated() where entry.offset >= summary.nextOffset {
                problems.append(
                    LogProblem(
                        file: timeIndexName, position: Int64(index * TimeIndexEntry.size), kind: .timeIndexEntry,
                        message: "entry \(index) (timestamp \(entry.timestamp), offset \(entry.offset)) lies past the segment's \(lastOffsetText(summary))"))
            }
        }
        if let offsetEntries {
            checkOffsetIndex(offsetEntries, fileName: indexName, segment: summary, problems: &problems)
        }
        return summary
    }

    private static func lastOffsetText(_ segment: SegmentSummary) -> String {
        segment.nextOffset > segment.baseOffset ? "last offset \(segment.nextOffset - 1)" : "offsets (it has no batches)"
    }

    /// Walks the batches of one segment: framing, CRC, offsets, records.
    private static func scanBatches(
        _ scanner: SegmentScanner, summary: inout SegmentSummary, timeCheck: inout TimeIndexCheck,
        compressor: BatchCompressor, problems: inout [LogProblem]
    ) {
        var scanner = scanner
        let fileName = summary.fileName
        var expected = summary.baseOffset
        scan: while true {
            let step: SegmentScanner.Step
            do { step = try scanner.next() } catch {
                problems.append(scanner.problem(.unreadableFile, error.description))
                break scan
            }
            let position: Int64
            let bytes: ByteBuffer
            switch step {
            case .end:
                break scan
            case .stop(let problem):
                problems.append(problem)
                break scan
            case .batch(let at, let frame):
                position = at
                bytes = frame
            }
            func report(_ kind: LogProblem.Kind, _ message: String) {
                problems.append(LogProblem(file: fileName, position: position, kind: kind, message: message))
            }
            let rawBase = bytes.getInteger(at: bytes.readerIndex + RecordBatch.Layout.baseOffset, as: Int64.self)!
            let rawDelta = bytes.getInteger(at: bytes.readerIndex + RecordBatch.Layout.lastOffsetDelta, as: Int32.self)!
            let span = BatchSpan(position: position, size: bytes.readableBytes, baseOffset: rawBase, lastOffset: rawBase &+ Int64(rawDelta))
            let isFirst = summary.batches.isEmpty
            summary.batches.append(span)
            summary.validEnd = position + Int64(bytes.readableBytes)

            // Offsets: the header's, whether or not the rest of the batch is sound.
            let range = "offsets \(span.baseOffset)...\(span.lastOffset)"
            if rawDelta < 0 {
                report(.offsetOrder, "last offset delta \(rawDelta) is negative")
            }
            if isFirst {
                if rawBase != summary.baseOffset {
                    report(
                        .segmentBaseOffset,
                        "the first batch has base offset \(rawBase), but the file name says the segment starts at \(summary.baseOffset)")
                }
            } else if rawBase > expected {
                report(
                    .offsetGap,
                    "offsets \(expected)...\(rawBase - 1) are missing: the previous batch ends at offset \(expected - 1) and this one starts at \(rawBase)")
            } else if rawBase < expected {
                report(
                    .offsetOrder,
                    "batch base offset \(rawBase) is not above the previous batch's last offset \(expected - 1)")
            }
            expected = max(expected, span.lastOffset &+ 1)

            let batch: RecordBatch
            do {
                batch = try RecordBatch(validating: bytes)
            } catch {
                report(.invalidBatch, "\(error.description) (batch of \(range))")
                timeCheck.record(offset: rawBase, timestamp: bytes.getInteger(at: bytes.readerIndex + RecordBatch.Layout.maxTimestamp, as: Int64.self)!)
                continue scan
            }
            summary.recordCount += Int64(batch.recordCount)
            let computed = batch.computedChecksum
            guard computed == batch.crc else {
                report(
                    .checksumMismatch,
                    "CRC-32C mismatch in the batch of \(range): stored \(hex(batch.crc)), computed \(hex(computed)) over bytes \(position + Int64(RecordBatch.Layout.attributes))..<\(position + Int64(batch.sizeInBytes))")
                // The records are not trusted; the header's max timestamp stands in for them.
                timeCheck.record(offset: batch.baseOffset, timestamp: batch.maxTimestamp)
                continue scan
            }
            checkRecords(batch, range: range, timeCheck: &timeCheck, compressor: compressor, report: report)
        }
        summary.nextOffset = expected
    }

    private static func checkRecords(
        _ batch: RecordBatch, range: String, timeCheck: inout TimeIndexCheck, compressor: BatchCompressor,
        report: (LogProblem.Kind, String) -> Void
    ) {
        var count = 0
        var previousOffset: Int64? = nil
        var maxRecordTimestamp = Int64.min
        do {
            var iterator = try batch.records(using: compressor)
            while let record = try iterator.next() {
                if record.offset < batch.baseOffset || record.offset > batch.lastOffset {
                    report(.batchHeaderMismatch, "record \(count) has offset \(record.offset), outside the batch's \(range)")
                } else if let previousOffset, record.offset <= previousOffset {
                    report(.batchHeaderMismatch, "record \(count) has offset \(record.offset), not above the previous record's \(previousOffset)")
                } else {
                    timeCheck.record(offset: record.offset, timestamp: record.timestamp)
                }
                previousOffset = record.offset
                maxRecordTimestamp = max(maxRecordTimestamp, record.timestamp)
                count += 1
            }
        } catch {
            report(.undecodableRecords, "the records of the batch of \(range) do not decode after \(count) of \(batch.recordCount): \(error.description)")
            timeCheck.record(offset: batch.baseOffset, timestamp: batch.maxTimestamp)
            return
        }
        if count > 0, !batch.usesLogAppendTime, maxRecordTimestamp != batch.maxTimestamp {
            report(
                .batchHeaderMismatch,
                "the header's max timestamp \(batch.maxTimestamp) is not the records' largest timestamp \(maxRecordTimestamp) (batch of \(range))")
        }
    }

    /// Streams the records' timestamps past the time index entries (in offset order) and
    /// checks Kafka's invariant: every record up to an entry's offset has a timestamp of at most
    /// the entry's timestamp.
    struct TimeIndexCheck {
        let fileName: String
        /// Entry number in the file, and the entry.
        var entries: [(index: Int, entry: TimeIndexEntry)] = []
        var cursor = 0
        var maxTimestamp = Int64.min
        var maxTimestampOffset: Int64 = -1
        var problems: [LogProblem] = []

        init(fileName: String) {
            self.fileName = fileName
        }

        /// A record (or a batch that stands for its records) at `offset`.
        mutating func record(offset: Int64, timestamp: Int64) {
            flush(below: offset)
            if timestamp > maxTimestamp {
                maxTimestamp = timestamp
                maxTimestampOffset = offset
            }
        }

        /// Checks the entries whose offset lies below `offset`: every record that they cover has
        /// been seen.
        mutating func flush(below offset: Int64) {
            while cursor < entries.count, entries[cursor].entry.offset < offset {
                let (index, entry) = entries[cursor]
                if maxTimestamp > entry.timestamp {
                    problems.append(
                        LogProblem(
                            file: fileName, position: Int64(index * TimeIndexEntry.size), kind: .timeIndexEntry,
                            message: "entry \(index) says every record up to offset \(entry.offset) has a timestamp of at most \(entry.timestamp), but offset \(maxTimestampOffset) has timestamp \(maxTimestamp)"))
                }
                cursor += 1
            }
        }
    }

    private static func checkOffsetIndex(
        _ entries: [OffsetIndexEntry], fileName: String, segment: SegmentSummary, problems: inout [LogProblem]
    ) {
        var previous: OffsetIndexEntry? = nil
        for (index, entry) in entries.enumerated() {
            func report(_ message: String) {
                problems.append(
                    LogProblem(file: fileName, position: Int64(index * OffsetIndexEntry.size), kind: .indexEntry, message: message))
            }
            let label = "entry \(index) (offset \(entry.offset), position \(entry.position))"
            if let previous, entry.offset <= previous.offset || entry.position <= previous.position {
                report("\(label) does not increase over entry \(index - 1) (offset \(previous.offset), position \(previous.position))")
            }
            previous = entry
            if entry.offset >= segment.nextOffset {
                report("\(label) lies past the segment's \(lastOffsetText(segment))")
                continue
            }
            let batch = segment.batch(atOrBefore: entry.position)
            if let batch, batch.position == entry.position {
                if batch.baseOffset != entry.offset {
                    report("\(label) points at the batch of offsets \(batch.baseOffset)...\(batch.lastOffset), whose base offset is not \(entry.offset)")
                }
            } else if let batch, entry.position < batch.position + Int64(batch.size) {
                report(
                    "\(label) is not the start of a batch: it lies \(entry.position - batch.position) bytes inside the batch at position \(batch.position) (offsets \(batch.baseOffset)...\(batch.lastOffset))")
            } else if entry.position >= segment.validEnd {
                report("\(label) points past the last whole batch, which ends at byte \(segment.validEnd) of \(segment.fileName)")
            } else {
                report("\(label) is not the start of a batch")
            }
        }
    }

    /// The entries of an index file, or nil when it is missing or unreadable (reported). A
    /// trailing partial entry is reported and left out.
    private static func loadIndex<Entry: IndexEntry>(
        _ type: Entry.Type, directory: String, fileName: String, baseOffset: Int64, problems: inout [LogProblem]
    ) -> [Entry]? {
        let path = directory + "/" + fileName
        guard FileSystem.exists(path) else {
            problems.append(
                LogProblem(file: fileName, position: nil, kind: .missingIndex, message: "missing; an open rebuilds it from the log"))
            return nil
        }
        do {
            let file = try LogFile(readOnlyPath: path)
            let size = try file.size()
            guard size <= indexBytesMax else {
                problems.append(
                    LogProblem(
                        file: fileName, position: nil, kind: .indexFileSize,
                        message: "\(size) bytes is more than the \(indexBytesMax) bytes an index may have; not checked"))
                return nil
            }
            let whole = size / Int64(Entry.size) * Int64(Entry.size)
            if whole != size {
                problems.append(
                    LogProblem(
                        file: fileName, position: whole, kind: .indexFileSize,
                        message: "\(size) bytes is not a multiple of the \(Entry.size)-byte entry: \(size - whole) bytes of a torn entry at the end"))
            }
            let bytes = try file.read(at: 0, length: Int(whole))
            var entries: [Entry] = []
            entries.reserveCapacity(bytes.readableBytes / Entry.size)
            var index = bytes.readerIndex
            while index + Entry.size <= bytes.writerIndex, let entry = Entry(from: bytes, at: index, baseOffset: baseOffset) {
                entries.append(entry)
                index += Entry.size
            }
            return entries
        } catch {
            problems.append(LogProblem(file: fileName, position: nil, kind: .unreadableFile, message: error.description))
            return nil
        }
    }

    // MARK: Checkpoints

    enum CheckpointRead {
        case missing
        case parsed(Checkpoint)
        case failed(LogProblem)
    }

    static func readCheckpoint(_ path: String) -> CheckpointRead {
        let name = fileName(of: path)
        do throws(StorageError) {
            guard let checkpoint = try Checkpoint.read(from: path) else { return .missing }
            return .parsed(checkpoint)
        } catch .corruptCheckpoint(_, let reason) {
            return .failed(LogProblem(file: name, position: nil, kind: .corruptCheckpoint, message: reason))
        } catch {
            return .failed(LogProblem(file: name, position: nil, kind: .unreadableFile, message: error.description))
        }
    }

    private static func checkCheckpoints(directory: String, segments: [SegmentSummary], problems: inout [LogProblem]) {
        let logEnd = segments.last?.nextOffset
        let firstBase = segments.first?.baseOffset

        let recoveryName = PartitionLog.recoveryPointFile
        func recoveryProblem(_ message: String) {
            problems.append(LogProblem(file: recoveryName, position: nil, kind: .recoveryPoint, message: message))
        }
        switch readCheckpoint(directory + "/" + recoveryName) {
        case .missing:
            if !segments.isEmpty { recoveryProblem("missing; an open scans every segment") }
        case .failed(let problem):
            problems.append(problem)
        case .parsed(let point):
            let missing = ["offset", "segment", "position"].filter { point[$0] == nil }
            guard missing.isEmpty, let offset = point["offset"], let base = point["segment"], let position = point["position"] else {
                recoveryProblem("lacks \(missing.joined(separator: ", "))")
                break
            }
            let segmentName = LogSegment.fileName(baseOffset: base, suffix: ".log")
            guard let segment = segments.first(where: { $0.baseOffset == base }) else {
                recoveryProblem("names segment \(segmentName), which is not in the directory")
                break
            }
            if position < 0 || position > segment.fileSize {
                recoveryProblem("position \(position) lies outside \(segmentName), which has \(segment.fileSize) bytes")
            } else if position > segment.validEnd {
                recoveryProblem("position \(position) lies past the last whole batch of \(segmentName), which ends at byte \(segment.validEnd)")
            } else {
                let expectedOffset: Int64?
                if position == segment.validEnd {
                    expectedOffset = segment.nextOffset
                } else if let batch = segment.batch(atOrBefore: position), batch.position == position {
                    expectedOffset = batch.baseOffset
                } else {
                    expectedOffset = nil
                    recoveryProblem("position \(position) of \(segmentName) is not a batch boundary")
                }
                if let expectedOffset, expectedOffset != offset {
                    recoveryProblem("offset \(offset) does not match position \(position) of \(segmentName), where offset \(expectedOffset) starts")
                }
            }
            if let logEnd, offset > logEnd {
                recoveryProblem("offset \(offset) lies past the log end offset \(logEnd)")
            } else if let firstBase, offset < firstBase {
                recoveryProblem("offset \(offset) lies below the first segment's base offset \(firstBase)")
            }
        }

        let startName = PartitionLog.logStartFile
        switch readCheckpoint(directory + "/" + startName) {
        case .missing:
            break
        case .failed(let problem):
            problems.append(problem)
        case .parsed(let checkpoint):
            guard let start = checkpoint["offset"] else {
                problems.append(LogProblem(file: startName, position: nil, kind: .logStartOffset, message: "lacks offset"))
                break
            }
            if start < 0 || start > (logEnd ?? start) {
                problems.append(
                    LogProblem(
                        file: startName, position: nil, kind: .logStartOffset,
                        message: "log start offset \(start) lies past the log end offset \(logEnd.map(String.init) ?? "none")"))
            }
        }
    }

    static func fileName(of path: String) -> String {
        path.split(separator: "/", omittingEmptySubsequences: true).last.map(String.init) ?? path
    }
}

/// Walks the batches of one segment file front to back, reading `LogInspector.chunkBytes` at a
/// time. It stops at the first framing it cannot follow, a length below a batch header or past
/// the end of the file, because the next batch's position is then unknown.
struct SegmentScanner {
    let file: LogFile
    let fileName: String
    let size: Int64
    private(set) var position: Int64 = 0
    private var chunk = ByteBuffer()
    private var chunkStart: Int64 = 0

    enum Step {
        /// A batch framed by its length: `bytes` holds exactly its `length + 12` bytes.
        case batch(position: Int64, bytes: ByteBuffer)
        case end
        /// Framing lost at `position`; the rest of the file is unscanned.
        case stop(LogProblem)
    }

    init(file: LogFile, fileName: String) throws(StorageError) {
        self.file = file
        self.fileName = fileName
        self.size = try file.size()
    }

    func problem(_ kind: LogProblem.Kind, _ message: String) -> LogProblem {
        LogProblem(file: fileName, position: position, kind: kind, message: message)
    }

    mutating func next() throws(StorageError) -> Step {
        let remaining = size - position
        guard remaining > 0 else { return .end }
        let overhead = RecordBatch.Layout.logOverhead
        guard remaining >= Int64(overhead), let prefix = try bytes(at: position, length: overhead) else {
            return .stop(
                problem(
                    .tornBatchHeader,
                    "torn batch header: \(remaining) bytes at the end of the file (\(size) bytes) are fewer than a batch's \(overhead)-byte offset and length"))
        }
        let length = prefix.getInteger(at: prefix.readerIndex + RecordBatch.Layout.batchLength, as: Int32.self)!
        let frame = Int64(length) + Int64(overhead)
        guard frame >= Int64(RecordBatch.Layout.headerSize) else {
            return .stop(
                problem(
                    .invalidBatchLength,
                    "batch length \(length) is shorter than a batch header (\(RecordBatch.Layout.headerSize - overhead) bytes after the length field); the \(remaining) bytes from here to the end of the file cannot be read as batches"))
        }
        guard frame <= remaining else {
            return .stop(
                problem(
                    .batchPastEndOfFile,
                    "batch length \(length) points past the end of the file: the batch would end at byte \(position + frame), but the file ends at byte \(size), \(remaining) bytes after the batch's start (a torn write if this is the last batch)"))
        }
        guard let batch = try bytes(at: position, length: Int(frame)) else {
            return .stop(problem(.unreadableFile, "the file shrank below byte \(position + frame) while it was read"))
        }
        let start = position
        position += frame
        return .batch(position: start, bytes: batch)
    }

    /// `length` bytes at `position`, from the current chunk or a new one; nil when the file has
    /// fewer. A new chunk gets new storage, because batches handed out may still hold slices of
    /// the old one.
    private mutating func bytes(at position: Int64, length: Int) throws(StorageError) -> ByteBuffer? {
        if position >= chunkStart, position - chunkStart + Int64(length) <= Int64(chunk.readableBytes) {
            return chunk.getSlice(at: chunk.readerIndex + Int(position - chunkStart), length: length)
        }
        chunk = ByteBuffer()
        chunkStart = position
        let want = min(Int64(max(LogInspector.chunkBytes, length)), size - position)
        try file.read(at: position, length: Int(want), into: &chunk)
        guard chunk.readableBytes >= length else { return nil }
        return chunk.getSlice(at: chunk.readerIndex, length: length)
    }
}

// MARK: - Reports

/// One inconsistency found in a partition directory.
public struct LogProblem: Sendable, Hashable, Codable, CustomStringConvertible {
    public enum Kind: String, Sendable, Hashable, Codable, CaseIterable {
        /// A file could not be opened or read.
        case unreadableFile
        /// Fewer than 12 bytes (offset and length) at the end of a segment.
        case tornBatchHeader
        /// A batch length below a batch header; the scan stops there.
        case invalidBatchLength
        /// A batch length that runs past the end of the file: a torn tail, or a corrupt length.
        case batchPastEndOfFile
        /// Framed, but not a valid v2 batch (magic, record count).
        case invalidBatch
        case checksumMismatch
        /// The records do not decompress or decode.
        case undecodableRecords
        /// The header disagrees with the records (offsets, max timestamp).
        case batchHeaderMismatch
        /// The first batch's base offset is not the file name's.
        case segmentBaseOffset
        /// Offsets missing between two batches or two segments.
        case offsetGap
        /// Offsets that do not increase: overlapping batches or segments, a negative delta.
        case offsetOrder
        case missingIndex
        /// An index file that is not a whole number of entries, or too large.
        case indexFileSize
        /// An `.index` entry out of order, out of range or not at the start of its batch.
        case indexEntry
        /// A `.timeindex` entry out of order, out of range or breaking the timestamp invariant.
        case timeIndexEntry
        /// A checkpoint that does not parse or whose CRC does not match.
        case corruptCheckpoint
        /// A recovery point that is missing or does not match the log.
        case recoveryPoint
        case logStartOffset
        /// A file an open removes: a leftover temp file or an index without its segment.
        case strayFile
    }

    /// The file's name inside the partition directory.
    public var file: String
    /// Byte position in `file` the problem is at, when there is one.
    public var position: Int64?
    public var kind: Kind
    public var message: String

    public init(file: String, position: Int64?, kind: Kind, message: String) {
        self.file = file
        self.position = position
        self.kind = kind
        self.message = message
    }

    public var description: String {
        "\(file)\(position.map { ":\($0)" } ?? ""): \(message)"
    }
}

/// What `LogInspector.verify` found.
public struct VerifyReport: Sendable, Equatable, Codable, CustomStringConvertible {
    public var directory: String
    public var problems: [LogProblem] = []
    public var segmentCount = 0
    public var batchCount = 0
    /// Sum of the batches' record counts.
    public var recordCount: Int64 = 0
    /// Bytes of the segment files.
    public var sizeBytes: Int64 = 0
    /// Base offset of the first batch and last offset of the last one; nil without batches.
    public var firstOffset: Int64?
    public var lastOffset: Int64?

    public init(directory: String) {
        self.directory = directory
    }

    public var isHealthy: Bool { problems.isEmpty }

    /// The summary line: totals, then "healthy" or the number of problems.
    public var summary: String {
        let offsets = firstOffset.map { first in "offsets \(first)...\(lastOffset ?? first)" } ?? "no offsets"
        let verdict = isHealthy ? "healthy" : "\(problems.count) problem\(problems.count == 1 ? "" : "s")"
        return "\(directory): \(segmentCount) segments, \(batchCount) batches, \(recordCount) records, \(sizeBytes) bytes, \(offsets): \(verdict)"
    }

    public var description: String {
        (problems.map(\.description) + [summary]).joined(separator: "\n")
    }
}

/// What `LogInspector.dump` found in a partition directory.
public struct PartitionDump: Sendable, Equatable, Codable, CustomStringConvertible {
    public var directory: String
    public var segments: [SegmentDump] = []
    public var checkpoints: [CheckpointDump] = []

    public init(directory: String) {
        self.directory = directory
    }

    /// Every problem of every segment.
    public var problems: [LogProblem] { segments.flatMap(\.problems) }

    /// Text in kafka-dump-log's layout.
    public var description: String {
        (segments.map(\.description) + checkpoints.map(\.description)).joined(separator: "\n")
    }
}

/// One segment file as `LogInspector.dump` found it.
public struct SegmentDump: Sendable, Equatable, Codable, CustomStringConvertible {
    public var path: String
    /// From the file name; nil when it is not a segment name.
    public var baseOffset: Int64?
    public var sizeBytes: Int64 = 0
    public var batches: [BatchDump] = []
    /// Where the scan stopped (a torn or unreadable tail), and batches that are not valid v2.
    public var problems: [LogProblem] = []

    public init(path: String, baseOffset: Int64?) {
        self.path = path
        self.baseOffset = baseOffset
    }

    public var fileName: String { LogInspector.fileName(of: path) }

    public var description: String {
        var lines = ["Dumping \(path)"]
        if let baseOffset { lines.append("Log starting offset: \(baseOffset)") }
        for batch in batches {
            lines.append(batch.description)
            for record in batch.records ?? [] { lines.append(record.description) }
            if let problem = batch.recordsProblem { lines.append("| records do not decode: \(problem)") }
        }
        for problem in problems {
            lines.append("Problem at position \(problem.position.map(String.init) ?? "-"): \(problem.message)")
        }
        return lines.joined(separator: "\n")
    }
}

/// One batch's header fields and checksums, and its records when asked for.
public struct BatchDump: Sendable, Equatable, Codable, CustomStringConvertible {
    public var position: Int64
    public var baseOffset: Int64
    public var lastOffset: Int64
    public var recordCount: Int32
    /// Bytes of the whole batch, including baseOffset and batchLength.
    public var sizeBytes: Int
    public var partitionLeaderEpoch: Int32
    public var magic: Int8
    public var attributes: Int16
    /// "none", "gzip", "snappy", "lz4", "zstd" or "unknown(n)".
    public var compressionCodec: String
    /// "CreateTime" or "LogAppendTime".
    public var timestampType: String
    public var isTransactional: Bool
    public var isControl: Bool
    public var baseTimestamp: Int64
    public var maxTimestamp: Int64
    public var producerId: Int64
    public var producerEpoch: Int16
    public var baseSequence: Int32
    public var lastSequence: Int32
    public var storedChecksum: UInt32
    public var computedChecksum: UInt32
    public var isChecksumValid: Bool
    /// Bytes of the records section as stored (compressed).
    public var recordsBytes: Int
    /// Bytes of the records section after decompression; nil when not decoded.
    public var uncompressedRecordsBytes: Int?
    /// nil unless records were asked for.
    public var records: [RecordDump]?
    /// Why the records did not (all) decode.
    public var recordsProblem: String?

    /// Reads the header fields of a framed batch of at least `RecordBatch.Layout.headerSize`
    /// bytes, whether or not it is valid.
    init(frame: ByteBuffer, position: Int64) {
        func field<T: FixedWidthInteger>(_ offset: Int, _: T.Type = T.self) -> T {
            frame.getInteger(at: frame.readerIndex + offset, as: T.self)!
        }
        typealias Layout = RecordBatch.Layout
        self.position = position
        self.baseOffset = field(Layout.baseOffset)
        let delta: Int32 = field(Layout.lastOffsetDelta)
        self.lastOffset = baseOffset &+ Int64(delta)
        self.recordCount = field(Layout.recordCount)
        self.sizeBytes = frame.readableBytes
        self.partitionLeaderEpoch = field(Layout.partitionLeaderEpoch)
        self.magic = field(Layout.magic)
        self.attributes = field(Layout.attributes)
        let codecBits = attributes & RecordBatch.codecMask
        self.compressionCodec = CompressionCodec(rawValue: codecBits)?.description ?? "unknown(\(codecBits))"
        self.timestampType = attributes & RecordBatch.timestampTypeBit != 0 ? "LogAppendTime" : "CreateTime"
        self.isTransactional = attributes & RecordBatch.transactionalBit != 0
        self.isControl = attributes & RecordBatch.controlBit != 0
        self.baseTimestamp = field(Layout.baseTimestamp)
        self.maxTimestamp = field(Layout.maxTimestamp)
        self.producerId = field(Layout.producerId)
        self.producerEpoch = field(Layout.producerEpoch)
        self.baseSequence = field(Layout.baseSequence)
        self.lastSequence = Self.sequence(baseSequence, plus: delta)
        self.storedChecksum = field(Layout.crc)
        self.computedChecksum = CRC32C.checksum(
            frame, at: frame.readerIndex + Layout.attributes, length: frame.readableBytes - Layout.attributes)
        self.isChecksumValid = storedChecksum == computedChecksum
        self.recordsBytes = frame.readableBytes - Layout.records
    }

    /// Kafka's sequence arithmetic: -1 stays -1, and sequences wrap from Int32.max to 0.
    static func sequence(_ base: Int32, plus delta: Int32) -> Int32 {
        guard base >= 0, delta >= 0 else { return base < 0 ? -1 : base }
        return base > Int32.max - delta ? delta - (Int32.max - base) - 1 : base + delta
    }

    public var description: String {
        var line = "baseOffset: \(baseOffset) lastOffset: \(lastOffset) count: \(recordCount)"
        line += " baseSequence: \(baseSequence) lastSequence: \(lastSequence) producerId: \(producerId) producerEpoch: \(producerEpoch)"
        line += " partitionLeaderEpoch: \(partitionLeaderEpoch) isTransactional: \(isTransactional) isControl: \(isControl)"
        line += " position: \(position) \(timestampType): \(maxTimestamp) size: \(sizeBytes) magic: \(magic)"
        line += " compresscodec: \(compressionCodec) recordsSize: \(recordsBytes)"
        if let uncompressedRecordsBytes { line += " uncompressedRecordsSize: \(uncompressedRecordsBytes)" }
        line += " crc: \(hex(storedChecksum))"
        if !isChecksumValid { line += " computedCrc: \(hex(computedChecksum))" }
        line += " isvalid: \(isChecksumValid)"
        return line
    }
}

/// One decoded record: sizes and a short printable preview of key, value and header values.
public struct RecordDump: Sendable, Equatable, Codable, CustomStringConvertible {
    public var offset: Int64
    public var timestamp: Int64
    /// "CreateTime" or "LogAppendTime".
    public var timestampType: String
    /// The producer's sequence number of this record; -1 without idempotence.
    public var sequence: Int32
    /// -1 for a null key or value, as in Kafka.
    public var keySize: Int
    public var valueSize: Int
    /// Printable previews (text, or hex for binary), nil for null.
    public var key: String?
    public var value: String?
    public var headers: [RecordHeaderDump]

    init(_ record: Record, batch: RecordBatch, previewBytes: Int) {
        self.offset = record.offset
        self.timestamp = record.timestamp
        self.timestampType = batch.usesLogAppendTime ? "LogAppendTime" : "CreateTime"
        self.sequence = BatchDump.sequence(batch.baseSequence, plus: Int32(truncatingIfNeeded: record.offset - batch.baseOffset))
        self.keySize = record.key?.readableBytes ?? -1
        self.valueSize = record.value?.readableBytes ?? -1
        self.key = record.key.map { printablePreview($0, limit: previewBytes) }
        self.value = record.value.map { printablePreview($0, limit: previewBytes) }
        self.headers = record.headers.map { header in
            RecordHeaderDump(
                key: header.key, valueSize: header.value?.readableBytes ?? -1,
                value: header.value.map { printablePreview($0, limit: previewBytes) })
        }
    }

    public var description: String {
        var line = "| offset: \(offset) \(timestampType): \(timestamp) keySize: \(keySize) valueSize: \(valueSize)"
        line += " sequence: \(sequence) headerKeys: [\(headers.map(\.key).joined(separator: ","))]"
        if let key { line += " key: \(key)" }
        if let value { line += " payload: \(value)" }
        return line
    }
}

public struct RecordHeaderDump: Sendable, Equatable, Codable {
    public var key: String
    /// -1 for a null value.
    public var valueSize: Int
    public var value: String?
}

/// A checkpoint file's values, or why it could not be read.
public struct CheckpointDump: Sendable, Equatable, Codable, CustomStringConvertible {
    public var fileName: String
    public var values: [String: Int64]?
    public var problem: String?

    public var description: String {
        if let values {
            return "\(fileName): " + values.keys.sorted().map { "\($0): \(values[$0]!)" }.joined(separator: " ")
        }
        return "\(fileName): unreadable: \(problem ?? "unknown")"
    }
}

/// At most `limit` bytes as text when they are printable UTF-8, else as hex; "..." marks a cut.
func printablePreview(_ bytes: ByteBuffer, limit: Int) -> String {
    let view = bytes.readableBytesView
    let cut = view.count > limit
    var head = view.prefix(max(0, limit))
    var text = String(validating: head, as: UTF8.self)
    // The cut may split a character: drop up to 3 bytes of it.
    var dropped = 0
    while text == nil, cut, dropped < 3, !head.isEmpty {
        head = head.dropLast()
        dropped += 1
        text = String(validating: head, as: UTF8.self)
    }
    let ellipsis = cut ? "..." : ""
    if let text, text.unicodeScalars.allSatisfy({ $0.properties.generalCategory != .control }) {
        return text + ellipsis
    }
    let hexBytes = view.prefix(max(0, limit / 2))
    var hex = "0x"
    for byte in hexBytes {
        if byte < 16 { hex += "0" }
        hex += String(byte, radix: 16)
    }
    return hex + (view.count > hexBytes.count ? "..." : "")
}

private func hex(_ value: UInt32) -> String {
    let digits = String(value, radix: 16)
    return "0x" + String(repeating: "0", count: max(0, 8 - digits.count)) + digits
}
