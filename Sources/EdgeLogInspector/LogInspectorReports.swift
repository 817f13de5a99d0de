public import EdgeLogStorage
import NIOCore

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
        line += " crc: \(paddedHex(storedChecksum))"
        if !isChecksumValid { line += " computedCrc: \(paddedHex(computedChecksum))" }
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

/// A CRC as eight hex digits, as kafka-dump-log prints it.
func paddedHex(_ value: UInt32) -> String {
    let digits = String(value, radix: 16)
    return "0x" + String(repeating: "0", count: max(0, 8 - digits.count)) + digits
}
