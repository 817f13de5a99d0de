import EdgeLogStorage
import NIOCore
import Testing

@Suite struct RecordBatchTests {
    @Test(arguments: [CompressionCodec.none, .gzip, .snappy, .lz4, .zstd])
    func roundTripsEveryField(codec: CompressionCodec) throws {
        let records = (0..<50).map { Fixtures.record($0) }
        let bytes = try Fixtures.batch(records: records, baseOffset: 1000, codec: codec)
        let batch = try RecordBatch(validating: bytes)
        #expect(batch.baseOffset == 1000)
        #expect(batch.lastOffset == 1049)
        #expect(batch.recordCount == 50)
        #expect(batch.codec == codec)
        #expect(batch.magic == 2)
        #expect(batch.baseTimestamp == records[0].timestamp)
        #expect(batch.maxTimestamp == records[49].timestamp)
        #expect(batch.producerId == -1)
        #expect(batch.isChecksumValid)
        let decoded = try batch.decodeRecords(using: BatchCompressor())
        #expect(decoded.count == 50)
        for (index, record) in decoded.enumerated() {
            var expected = records[index]
            expected.offset = 1000 + Int64(index)
            #expect(record == expected)
        }
    }

    @Test func compressionShrinksRepetitiveRecords() throws {
        let records = (0..<500).map { Fixtures.record($0) }
        let plain = try Fixtures.batch(records: records, codec: .none)
        for codec in [CompressionCodec.gzip, .snappy, .lz4, .zstd] {
            let compressed = try Fixtures.batch(records: records, codec: codec)
            #expect(compressed.readableBytes * 3 < plain.readableBytes, "\(codec)")
        }
    }

    @Test func nullAndEmptyKeysValuesAndHeadersStayDistinct() throws {
        let records = [
            Record(timestamp: 5, key: nil, value: nil),
            Record(timestamp: 4, key: ByteBuffer(), value: ByteBuffer()),
            Record(timestamp: 9, key: nil, value: ByteBuffer(bytes: [0, 1, 2, 255]),
                   headers: [RecordHeader(key: "", value: ByteBuffer()), RecordHeader(key: "ü", value: nil)]),
        ]
        let batch = try RecordBatch(validating: try Fixtures.batch(records: records, baseOffset: 7))
        let decoded = try batch.decodeRecords(using: BatchCompressor())
        #expect(decoded.map(\.key) == records.map(\.key))
        #expect(decoded.map(\.value) == records.map(\.value))
        #expect(decoded[2].headers == records[2].headers)
        #expect(decoded.map(\.timestamp) == [5, 4, 9])
        #expect(batch.maxTimestamp == 9)
        #expect(batch.baseTimestamp == 5)
    }

    @Test func setBaseOffsetKeepsTheChecksumValid() throws {
        var batch = try RecordBatch(validating: try Fixtures.batch(records: [Fixtures.record(1)]))
        batch.setBaseOffset(123_456_789)
        #expect(batch.isChecksumValid)
        #expect(batch.baseOffset == 123_456_789)
        let decoded = try batch.decodeRecords(using: BatchCompressor())
        #expect(decoded[0].offset == 123_456_789)
    }

    @Test func restampingTheProducerRecomputesTheChecksum() throws {
        var batch = try RecordBatch(validating: try Fixtures.batch(records: [Fixtures.record(1)], codec: .gzip))
        let section = batch.recordsSection
        batch.setProducer(id: 42, epoch: 3, baseSequence: 17)
        #expect(batch.isChecksumValid)
        #expect(batch.producerId == 42 && batch.producerEpoch == 3 && batch.baseSequence == 17)
        #expect(batch.recordsSection == section, "compressed bytes are shipped untouched")
    }

    @Test func everyFlippedByteIsCaughtByTheChecksumOrTheFraming() throws {
        let bytes = try Fixtures.batch(records: (0..<3).map { Fixtures.record($0) }, codec: .gzip)
        for index in RecordBatch.Layout.crc..<bytes.readableBytes {
            var corrupt = bytes
            corrupt.setInteger(corrupt.getInteger(at: index, as: UInt8.self)! ^ 0x40, at: index)
            if let batch = try? RecordBatch(validating: corrupt) {
                #expect(!batch.isChecksumValid, "flip at \(index) went unnoticed")
                #expect(throws: StorageError.self) { try batch.verifyChecksum() }
            }
        }
    }

    @Test func framingErrorsArePrecise() throws {
        let bytes = try Fixtures.batch(records: [Fixtures.record(1)])
        #expect(throws: StorageError.corruptBatch(reason: "10 bytes is shorter than a batch header")) {
            try RecordBatch(validating: bytes.getSlice(at: 0, length: 10)!)
        }
        var longer = bytes
        longer.writeInteger(UInt8(0))
        #expect(throws: StorageError.self) { try RecordBatch(validating: longer) }
        var wrongMagic = bytes
        wrongMagic.setInteger(Int8(1), at: RecordBatch.Layout.magic)
        #expect(throws: StorageError.corruptBatch(reason: "magic 1 is not 2")) {
            try RecordBatch(validating: wrongMagic)
        }
    }

    @Test(arguments: [CompressionCodec.gzip, .snappy, .lz4, .zstd])
    func truncatedCompressedSectionIsAnError(codec: CompressionCodec) throws {
        let records = (0..<200).map { Fixtures.record($0) }
        let bytes = try Fixtures.batch(records: records, codec: codec)
        // Cut the compressed section short but keep the framing consistent.
        var cut = bytes.getSlice(at: 0, length: bytes.readableBytes - 20)!
        cut.setInteger(Int32(cut.readableBytes - 12), at: RecordBatch.Layout.batchLength)
        let batch = try RecordBatch(validating: cut)
        #expect(throws: StorageError.self) { try batch.decodeRecords(using: BatchCompressor()) }
    }

    @Test(arguments: [CompressionCodec.gzip, .snappy, .lz4, .zstd])
    func garbageCompressedSectionIsAnError(codec: CompressionCodec) throws {
        var bytes = try Fixtures.batch(records: [Fixtures.record(1)], codec: codec)
        for index in RecordBatch.Layout.records..<bytes.readableBytes { bytes.setInteger(UInt8(index & 0xFF), at: index) }
        let batch = try RecordBatch(validating: bytes)
        #expect(throws: StorageError.self) { try batch.decodeRecords(using: BatchCompressor()) }
    }

    @Test func decompressionBombsAreRefused() throws {
        let big = Record(timestamp: 1, value: ByteBuffer(repeating: 0, count: 1 << 20))
        for codec in [CompressionCodec.gzip, .snappy, .lz4, .zstd] {
            let batch = try RecordBatch(validating: try Fixtures.batch(records: [big], codec: codec))
            #expect(throws: StorageError.self) {
                try batch.decodeRecords(using: BatchCompressor(maxDecompressedBytes: 64 * 1024))
            }
        }
    }

    /// The Java client and kafka-python frame snappy the xerial way: a 16-byte header, then
    /// blocks of a big-endian length and plain snappy. Read as one section, like plain snappy.
    @Test func snappyReadsXerialFramingAndRefusesItsTruncation() throws {
        let compressor = BatchCompressor()
        let halves = [ByteBuffer(repeating: 0x61, count: 40_000), ByteBuffer(string: String(repeating: "reading ", count: 900))]
        var framed = ByteBuffer(bytes: [0x82, 0x53, 0x4E, 0x41, 0x50, 0x50, 0x59, 0x00, 0, 0, 0, 1, 0, 0, 0, 1])
        for half in halves {
            var block = ByteBuffer()
            try compressor.compress(half, codec: .snappy, into: &block)
            framed.writeInteger(Int32(block.readableBytes))
            framed.writeImmutableBuffer(block)
        }
        var plain = ByteBuffer()
        try compressor.decompress(framed, codec: .snappy, into: &plain)
        var expected = ByteBuffer()
        for half in halves { expected.writeImmutableBuffer(half) }
        #expect(plain == expected)

        let cut = framed.getSlice(at: 0, length: framed.readableBytes - 3)!
        var ignored = ByteBuffer()
        #expect(throws: StorageError.self) { try compressor.decompress(cut, codec: .snappy, into: &ignored) }
        // A declared size over the limit is refused before anything is allocated for it.
        var out = ByteBuffer()
        #expect(throws: StorageError.self) {
            try BatchCompressor(maxDecompressedBytes: 45_000).decompress(framed, codec: .snappy, into: &out)
        }
    }

    @Test func varintsRoundTripAtTheEdges() {
        let values: [Int64] = [0, 1, -1, 63, -64, 64, -65, 8191, -8192, Int64(Int32.max), Int64(Int32.min), .max, .min]
        var buffer = ByteBuffer()
        for value in values {
            let written = buffer.writeVarint(value)
            #expect(written == ByteBuffer.varintSize(value))
        }
        for value in values { #expect(buffer.readVarint() == value) }
        #expect(buffer.readVarint() == nil)
        var unterminated = ByteBuffer(bytes: [UInt8](repeating: 0xFF, count: 11))
        #expect(unterminated.readVarint() == nil)
        #expect(unterminated.readerIndex == 0)
    }
}
