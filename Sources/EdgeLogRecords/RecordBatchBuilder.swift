public import NIOCore

/// Builds RecordBatch v2 bytes the way Kafka's producers do: timestamps as deltas from the first
/// record, offset deltas from 0, the records compressed as one block, the CRC last.
///
/// One builder is reused for every batch an appender writes: `reset` keeps the buffers'
/// capacity, so a steady stream of batches allocates nothing per record.
public struct RecordBatchBuilder {
    /// The identity and sequence an idempotent producer stamps on its batches.
    public struct ProducerStamp: Sendable, Hashable {
        public var id: Int64
        public var epoch: Int16
        public var baseSequence: Int32
        public static let none = ProducerStamp(id: -1, epoch: -1, baseSequence: -1)

        public init(id: Int64, epoch: Int16, baseSequence: Int32) {
            self.id = id
            self.epoch = epoch
            self.baseSequence = baseSequence
        }
    }

    public private(set) var codec: CompressionCodec
    public var compressionLevel: Int32?
    public var producer: ProducerStamp = .none
    public var partitionLeaderEpoch: Int32 = -1
    public var isTransactional = false
    public private(set) var recordCount: Int32 = 0
    public private(set) var firstTimestamp: Int64 = 0
    public private(set) var maxTimestamp: Int64 = -1
    private var records: ByteBuffer
    private let compressor: BatchCompressor

    public init(codec: CompressionCodec, compressionLevel: Int32? = nil, allocator: ByteBufferAllocator = .init()) {
        self.codec = codec
        self.compressionLevel = compressionLevel
        self.records = allocator.buffer(capacity: 16 * 1024)
        self.compressor = BatchCompressor()
    }

    /// Starts a new batch, keeping buffer capacity.
    public mutating func reset(codec: CompressionCodec? = nil) {
        if let codec { self.codec = codec }
        records.clear()
        recordCount = 0
        maxTimestamp = -1
        firstTimestamp = 0
        producer = .none
        isTransactional = false
    }

    /// Bytes of the uncompressed records written so far.
    public var uncompressedRecordBytes: Int { records.readableBytes }

    /// Size of the batch if it were finished now without compression.
    public var uncompressedBatchBytes: Int { RecordBatch.Layout.headerSize + records.readableBytes }

    /// An upper bound of the bytes `record` takes in any batch (largest offset and timestamp
    /// deltas), for checking size limits before a record is queued.
    public static func encodedSizeBound(of record: Record) -> Int {
        let body = bodySize(record, offsetDelta: 0, timestampDelta: 0) + 4 + 9
        return ByteBuffer.varintSize(Int64(body)) + body
    }

    /// Appends a record; its offset delta is its position in the batch.
    public mutating func append(_ record: Record) {
        _ = append(record, ifBatchStaysUnder: .max)
    }

    /// Appends a record unless that would make the uncompressed batch larger than `maxBytes`
    /// (an empty batch always takes it). Returns whether it was appended.
    public mutating func append(_ record: Record, ifBatchStaysUnder maxBytes: Int) -> Bool {
        let first = recordCount == 0 ? record.timestamp : firstTimestamp
        let timestampDelta = record.timestamp - first
        let offsetDelta = Int64(recordCount)
        let body = Self.bodySize(record, offsetDelta: offsetDelta, timestampDelta: timestampDelta)
        let size = ByteBuffer.varintSize(Int64(body)) + body
        guard recordCount == 0 || uncompressedBatchBytes + size <= maxBytes else { return false }
        firstTimestamp = first
        maxTimestamp = Swift.max(maxTimestamp, record.timestamp)
        records.writeWithUnsafeMutableBytes(minimumWritableBytes: size) { memory in
            var writer = RawRecordWriter(memory)
            writer.varint(Int64(body))
            writer.byte(0)  // record attributes: unused
            writer.varint(timestampDelta)
            writer.varint(offsetDelta)
            writer.lengthPrefixed(record.key)
            writer.lengthPrefixed(record.value)
            writer.varint(Int64(record.headers.count))
            for header in record.headers {
                writer.lengthPrefixed(header.key)
                writer.lengthPrefixed(header.value)
            }
            assert(writer.written == size, "record size \(size) computed, \(writer.written) written")
            return size
        }
        recordCount += 1
        return true
    }

    /// Writes the finished batch with `baseOffset` to `output` and returns its size in bytes.
    @discardableResult
    public mutating func finish(baseOffset: Int64, into output: inout ByteBuffer) throws(StorageError) -> Int {
        precondition(recordCount > 0, "a record batch needs at least one record")
        let start = output.writerIndex
        output.writeInteger(baseOffset)
        output.writeInteger(Int32(0))  // batchLength, set below
        output.writeInteger(partitionLeaderEpoch)
        output.writeInteger(RecordBatch.currentMagic)
        output.writeInteger(UInt32(0))  // crc, set below
        var attributes = codec.rawValue
        if isTransactional { attributes |= RecordBatch.transactionalBit }
        output.writeInteger(attributes)
        output.writeInteger(recordCount - 1)
        output.writeInteger(firstTimestamp)
        output.writeInteger(maxTimestamp)
        output.writeInteger(producer.id)
        output.writeInteger(producer.epoch)
        output.writeInteger(producer.baseSequence)
        output.writeInteger(recordCount)
        if codec == .none {
            output.writeImmutableBuffer(records)
        } else {
            try compressor.compress(records, codec: codec, level: compressionLevel, into: &output)
        }
        let size = output.writerIndex - start
        output.setInteger(Int32(size - RecordBatch.Layout.logOverhead), at: start + RecordBatch.Layout.batchLength)
        let crc = CRC32C.checksum(
            output, at: start + RecordBatch.Layout.attributes, length: size - RecordBatch.Layout.attributes)
        output.setInteger(crc, at: start + RecordBatch.Layout.crc)
        return size
    }

    @inlinable
    static func bodySize(_ record: Record, offsetDelta: Int64, timestampDelta: Int64) -> Int {
        var size = 1 + ByteBuffer.varintSize(timestampDelta) + ByteBuffer.varintSize(offsetDelta)
        size += bytesFieldSize(record.key) + bytesFieldSize(record.value)
        size += ByteBuffer.varintSize(Int64(record.headers.count))
        for header in record.headers {
            let keyLength = header.key.utf8.count
            size += ByteBuffer.varintSize(Int64(keyLength)) + keyLength + bytesFieldSize(header.value)
        }
        return size
    }

    @inlinable
    static func bytesFieldSize(_ bytes: ByteBuffer?) -> Int {
        guard let bytes else { return 1 }
        return ByteBuffer.varintSize(Int64(bytes.readableBytes)) + bytes.readableBytes
    }
}
