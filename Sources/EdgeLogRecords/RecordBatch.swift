public import NIOCore

/// A Kafka RecordBatch v2 (magic 2), held as its stored bytes.
///
/// Byte layout (big-endian), as written by Kafka's clients and brokers:
///
///     offset  size  field
///          0     8  baseOffset
///          8     4  batchLength          bytes after this field
///         12     4  partitionLeaderEpoch
///         16     1  magic                always 2
///         17     4  crc                  CRC-32C of bytes 21..<end
///         21     2  attributes           codec in bits 0-2, timestamp type bit 3,
///                                        transactional bit 4, control bit 5
///         23     4  lastOffsetDelta
///         27     8  baseTimestamp        timestamp of the first record
///         35     8  maxTimestamp
///         43     8  producerId           -1 without idempotence
///         51     2  producerEpoch
///         53     4  baseSequence
///         57     4  recordCount
///         61     …  records, compressed as a whole when the codec is not none
///
/// The CRC leaves out baseOffset, batchLength, partitionLeaderEpoch and magic, so the log can
/// assign offsets (and a leader can stamp its epoch) without recomputing it.
///
/// `buffer` holds exactly one batch (reader index at its first byte); it is usually a slice that
/// shares storage with a segment read or a request, so a `RecordBatch` copies nothing.
public struct RecordBatch: Sendable, Hashable {
    public enum Layout {
        public static let baseOffset = 0
        public static let batchLength = 8
        public static let partitionLeaderEpoch = 12
        public static let magic = 16
        public static let crc = 17
        public static let attributes = 21
        public static let lastOffsetDelta = 23
        public static let baseTimestamp = 27
        public static let maxTimestamp = 35
        public static let producerId = 43
        public static let producerEpoch = 51
        public static let baseSequence = 53
        public static let recordCount = 57
        public static let records = 61
        /// baseOffset and batchLength: the bytes not counted by batchLength.
        public static let logOverhead = 12
        public static let headerSize = 61
    }

    public static let currentMagic: Int8 = 2
    package static let codecMask: Int16 = 0x07
    package static let timestampTypeBit: Int16 = 0x08
    package static let transactionalBit: Int16 = 0x10
    package static let controlBit: Int16 = 0x20

    public private(set) var buffer: ByteBuffer

    /// Wraps bytes that hold one whole batch. Checks the framing (size, magic, length) but not
    /// the CRC: call `verifyChecksum()` for that.
    public init(validating buffer: ByteBuffer) throws(StorageError) {
        guard buffer.readableBytes >= Layout.headerSize else {
            throw .corruptBatch(reason: "\(buffer.readableBytes) bytes is shorter than a batch header")
        }
        let length = Int(buffer.getInteger(at: buffer.readerIndex + Layout.batchLength, as: Int32.self)!)
        guard length + Layout.logOverhead == buffer.readableBytes else {
            throw .corruptBatch(
                reason: "batch length \(length) does not match the \(buffer.readableBytes - Layout.logOverhead) bytes present")
        }
        let magic = buffer.getInteger(at: buffer.readerIndex + Layout.magic, as: Int8.self)!
        guard magic == Self.currentMagic else {
            throw .corruptBatch(reason: "magic \(magic) is not 2")
        }
        let count = buffer.getInteger(at: buffer.readerIndex + Layout.recordCount, as: Int32.self)!
        guard count >= 0 else { throw .corruptBatch(reason: "negative record count \(count)") }
        self.buffer = buffer
    }

    /// Total size including baseOffset and batchLength.
    @inlinable public var sizeInBytes: Int { buffer.readableBytes }

    @inlinable func field<T: FixedWidthInteger>(_ offset: Int, as: T.Type = T.self) -> T {
        buffer.getInteger(at: buffer.readerIndex + offset, as: T.self)!
    }

    public var baseOffset: Int64 { field(Layout.baseOffset) }
    public var batchLength: Int32 { field(Layout.batchLength) }
    public var partitionLeaderEpoch: Int32 { field(Layout.partitionLeaderEpoch) }
    public var magic: Int8 { field(Layout.magic) }
    public var crc: UInt32 { field(Layout.crc) }
    public var attributes: Int16 { field(Layout.attributes) }
    public var lastOffsetDelta: Int32 { field(Layout.lastOffsetDelta) }
    public var baseTimestamp: Int64 { field(Layout.baseTimestamp) }
    public var maxTimestamp: Int64 { field(Layout.maxTimestamp) }
    public var producerId: Int64 { field(Layout.producerId) }
    public var producerEpoch: Int16 { field(Layout.producerEpoch) }
    public var baseSequence: Int32 { field(Layout.baseSequence) }
    public var recordCount: Int32 { field(Layout.recordCount) }

    public var lastOffset: Int64 { baseOffset + Int64(lastOffsetDelta) }
    public var nextOffset: Int64 { lastOffset + 1 }
    public var isTransactional: Bool { attributes & Self.transactionalBit != 0 }
    public var isControlBatch: Bool { attributes & Self.controlBit != 0 }
    public var usesLogAppendTime: Bool { attributes & Self.timestampTypeBit != 0 }

    /// The codec, or nil for the reserved values 5-7.
    public var codec: CompressionCodec? { CompressionCodec(rawValue: attributes & Self.codecMask) }

    /// The CRC-32C of the bytes the stored CRC covers.
    public var computedChecksum: UInt32 {
        CRC32C.checksum(buffer, at: buffer.readerIndex + Layout.attributes, length: sizeInBytes - Layout.attributes)
    }

    public var isChecksumValid: Bool { crc == computedChecksum }

    public func verifyChecksum() throws(StorageError) {
        let computed = computedChecksum
        guard computed == crc else { throw .checksumMismatch(expected: crc, actual: computed) }
    }

    /// Sets the base offset in place; the CRC does not cover it.
    public mutating func setBaseOffset(_ offset: Int64) {
        buffer.setInteger(offset, at: buffer.readerIndex + Layout.baseOffset)
    }

    public mutating func setPartitionLeaderEpoch(_ epoch: Int32) {
        buffer.setInteger(epoch, at: buffer.readerIndex + Layout.partitionLeaderEpoch)
    }

    /// Restamps the idempotent-producer fields and recomputes the CRC. The records, compressed
    /// or not, stay as they are.
    public mutating func setProducer(id: Int64, epoch: Int16, baseSequence: Int32) {
        let start = buffer.readerIndex
        buffer.setInteger(id, at: start + Layout.producerId)
        buffer.setInteger(epoch, at: start + Layout.producerEpoch)
        buffer.setInteger(baseSequence, at: start + Layout.baseSequence)
        buffer.setInteger(computedChecksum, at: start + Layout.crc)
    }

    /// The records section as stored (compressed when the codec is not none).
    public var recordsSection: ByteBuffer {
        buffer.getSlice(at: buffer.readerIndex + Layout.records, length: sizeInBytes - Layout.records)!
    }
}

extension RecordBatch {
    /// Reads the batch framing at `index` in `buffer` without copying: the size of the batch
    /// that starts there, or nil when fewer than 12 bytes are readable there.
    @inlinable
    public static func frameSize(in buffer: ByteBuffer, at index: Int) -> Int? {
        guard let length = buffer.getInteger(at: index + Layout.batchLength, as: Int32.self) else { return nil }
        return Int(length) + Layout.logOverhead
    }
}
