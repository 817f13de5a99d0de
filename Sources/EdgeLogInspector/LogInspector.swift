public import EdgeLogStorage
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
}
