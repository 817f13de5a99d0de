public import EdgeLogStorage
import NIOCore

extension LogInspector {
    // MARK: Verify (what the type comment lists)

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
                    "CRC-32C mismatch in the batch of \(range): stored \(paddedHex(batch.crc)), computed \(paddedHex(computed)) over bytes \(position + Int64(RecordBatch.Layout.attributes))..<\(position + Int64(batch.sizeInBytes))")
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
}
