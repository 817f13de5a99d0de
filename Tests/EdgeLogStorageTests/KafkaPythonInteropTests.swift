import EdgeLogStorage
import Foundation
import NIOCore
import Testing

/// Byte compatibility with kafka-python's RecordBatch v2, an implementation written
/// independently of ours, through `Tests/Interop/kafka_batches.py`.
///
/// Needs python3 with kafka-python, lz4 and zstandard; run with `EDGELOG_IT=1 swift test`
/// (`EDGELOG_PYTHON` names another interpreter than the first python3 on PATH).
@Suite(.enabled(
    if: ProcessInfo.processInfo.environment["EDGELOG_IT"] == "1",
    "set EDGELOG_IT=1 to run the kafka-python interop tests"))
struct KafkaPythonInteropTests {
    let python = KafkaPython()

    // MARK: kafka-python builds, we read

    @Test(arguments: InteropSamples.codecs, InteropSamples.stamps)
    func weDecodeKafkaPythonBatches(codec: CompressionCodec, stamp: RecordBatchBuilder.ProducerStamp) throws {
        let records = InteropSamples.records()
        let built = try python.build(codec: codec, baseOffset: 5_000, producer: stamp, records: records)
        try #require(built.codecUsed == codec.rawValue, "kafka-python fell back to codec \(built.codecUsed)")

        let batch = try RecordBatch(validating: built.batch)
        #expect(batch.isChecksumValid)
        #expect(batch.magic == 2)
        #expect(batch.codec == codec)
        #expect(batch.baseOffset == 5_000)
        #expect(batch.lastOffsetDelta == Int32(records.count - 1))
        #expect(batch.lastOffset == 5_000 + Int64(records.count - 1))
        #expect(batch.recordCount == Int32(records.count))
        #expect(batch.baseTimestamp == records[0].timestamp)
        #expect(batch.maxTimestamp == records.map(\.timestamp).max())
        #expect(batch.producerId == stamp.id)
        #expect(batch.producerEpoch == stamp.epoch)
        #expect(batch.baseSequence == stamp.baseSequence)
        #expect(!batch.isTransactional && !batch.isControlBatch && !batch.usesLogAppendTime)

        let decoded = try batch.decodeRecords(using: BatchCompressor())
        expectSameRecords(decoded, InteropSamples.expected(records, baseOffset: 5_000))
    }

    // MARK: Our builder against kafka-python's

    @Test(arguments: InteropSamples.codecs, InteropSamples.stamps)
    func ourBuilderReproducesKafkaPythonBatches(codec: CompressionCodec, stamp: RecordBatchBuilder.ProducerStamp) throws {
        let built = try python.build(
            codec: codec, baseOffset: 42_000, producer: stamp, records: InteropSamples.records())
        try #require(built.codecUsed == codec.rawValue, "kafka-python fell back to codec \(built.codecUsed)")
        let theirs = try RecordBatch(validating: built.batch)

        var builder = RecordBatchBuilder(codec: codec)
        builder.producer = stamp
        // kafka-python writes 0 where Kafka's Java producer writes -1 (our default). The CRC
        // leaves the field out and the broker overwrites it, so take theirs.
        builder.partitionLeaderEpoch = theirs.partitionLeaderEpoch
        for record in try theirs.decodeRecords(using: BatchCompressor()) {
            builder.append(record)
        }
        var bytes = ByteBuffer()
        try builder.finish(baseOffset: theirs.baseOffset, into: &bytes)
        let ours = try RecordBatch(validating: bytes)
        #expect(ours.isChecksumValid)

        if codec == .none {
            #expect(firstDifference(bytes, built.batch) == nil, "byte-for-byte equal to kafka-python's batch")
            #expect(bytes.readableBytes == built.batch.readableBytes)
            #expect(ours.crc == theirs.crc)
        }

        // The header, except batchLength and the CRC, which depend on the compressed size and bytes.
        let layout = RecordBatch.Layout.self
        for range in [0..<layout.batchLength, layout.partitionLeaderEpoch..<layout.crc, layout.attributes..<layout.records] {
            #expect(
                bytes.getBytes(at: range.lowerBound, length: range.count)
                    == built.batch.getBytes(at: range.lowerBound, length: range.count),
                "header bytes \(range)")
        }
        #expect(ours.baseOffset == theirs.baseOffset)
        #expect(ours.partitionLeaderEpoch == theirs.partitionLeaderEpoch)
        #expect(ours.magic == theirs.magic)
        #expect(ours.attributes == theirs.attributes)
        #expect(ours.lastOffsetDelta == theirs.lastOffsetDelta)
        #expect(ours.baseTimestamp == theirs.baseTimestamp)
        #expect(ours.maxTimestamp == theirs.maxTimestamp)
        #expect(ours.producerId == theirs.producerId)
        #expect(ours.producerEpoch == theirs.producerEpoch)
        #expect(ours.baseSequence == theirs.baseSequence)
        #expect(ours.recordCount == theirs.recordCount)

        // The records section: compressors differ in settings (and gzip stores a time), so
        // compare what the two compressed sections decompress to.
        let compressor = BatchCompressor()
        var theirRecords = ByteBuffer()
        try compressor.decompress(theirs.recordsSection, codec: codec, into: &theirRecords)
        var ourRecords = ByteBuffer()
        try compressor.decompress(ours.recordsSection, codec: codec, into: &ourRecords)
        #expect(ourRecords.readableBytes == theirRecords.readableBytes)
        #expect(firstDifference(ourRecords, theirRecords) == nil, "uncompressed records are byte-for-byte equal")
    }

    @Test(arguments: InteropSamples.codecs)
    func kafkaPythonCompressedSectionSurvivesRestamping(codec: CompressionCodec) throws {
        let records = InteropSamples.records()
        let built = try python.build(codec: codec, baseOffset: 0, records: records)
        try #require(built.codecUsed == codec.rawValue, "kafka-python fell back to codec \(built.codecUsed)")
        var batch = try RecordBatch(validating: built.batch)
        let section = batch.recordsSection

        batch.setBaseOffset(77_777)
        batch.setProducer(id: 1234, epoch: 5, baseSequence: 100)
        #expect(batch.recordsSection == section, "the stored records are shipped untouched")
        #expect(batch.isChecksumValid)
        #expect(batch.producerId == 1234 && batch.producerEpoch == 5 && batch.baseSequence == 100)
        expectSameRecords(
            try batch.decodeRecords(using: BatchCompressor()), InteropSamples.expected(records, baseOffset: 77_777))

        // kafka-python accepts the restamped batch, CRC included.
        let parsed = try #require(try python.parse([batch.buffer]).first)
        #expect(parsed.crcValid)
        #expect(parsed.compressionType == codec.rawValue)
        #expect(parsed.baseOffset == 77_777)
        #expect(parsed.producerId == 1234 && parsed.producerEpoch == 5 && parsed.baseSequence == 100)
        expectSameRecords(try parsed.records.map { try $0.record() }, InteropSamples.expected(records, baseOffset: 77_777))
    }

    // MARK: We build, kafka-python reads

    @Test(arguments: InteropSamples.codecs)
    func kafkaPythonReadsOurBatches(codec: CompressionCodec) throws {
        let records = InteropSamples.records()
        // One batch per producer stamp, all parsed in one call.
        var batches: [(baseOffset: Int64, stamp: RecordBatchBuilder.ProducerStamp, bytes: ByteBuffer)] = []
        for (index, stamp) in InteropSamples.stamps.enumerated() {
            var builder = RecordBatchBuilder(codec: codec)
            builder.producer = stamp
            for record in records { builder.append(record) }
            var bytes = ByteBuffer()
            let baseOffset = 10_000 * Int64(index + 1)
            try builder.finish(baseOffset: baseOffset, into: &bytes)
            batches.append((baseOffset, stamp, bytes))
        }

        let parsed = try python.parse(batches.map(\.bytes))
        try #require(parsed.count == batches.count)
        for (sent, summary) in zip(batches, parsed) {
            let ours = try RecordBatch(validating: sent.bytes)
            #expect(summary.crcValid, "kafka-python validates our CRC")
            #expect(summary.crc == ours.crc)
            #expect(summary.sizeInBytes == sent.bytes.readableBytes)
            #expect(summary.bytesGiven == summary.sizeInBytes)
            #expect(summary.magic == 2)
            #expect(summary.attributes == codec.rawValue)
            #expect(summary.compressionType == codec.rawValue)
            #expect(!summary.isTransactional && !summary.isControlBatch)
            #expect(summary.timestampType == 0, "CreateTime")
            #expect(summary.partitionLeaderEpoch == -1)
            #expect(summary.baseOffset == sent.baseOffset)
            #expect(summary.lastOffsetDelta == Int32(records.count - 1))
            #expect(summary.firstTimestamp == records[0].timestamp)
            #expect(summary.maxTimestamp == records.map(\.timestamp).max())
            #expect(summary.producerId == sent.stamp.id)
            #expect(summary.producerEpoch == sent.stamp.epoch)
            #expect(summary.baseSequence == sent.stamp.baseSequence)
            #expect(summary.recordsCount == Int32(records.count))
            expectSameRecords(
                try summary.records.map { try $0.record() }, InteropSamples.expected(records, baseOffset: sent.baseOffset))
        }
    }

    // MARK: Small and odd batches, uncompressed (kafka-python would not compress them)

    @Test func edgeCaseBatchesMatchByteForByte() throws {
        for (name, records) in InteropSamples.edgeCases {
            let built = try python.build(codec: .none, baseOffset: 9, records: records)
            var builder = RecordBatchBuilder(codec: .none)
            builder.partitionLeaderEpoch = 0  // what kafka-python writes
            for record in records { builder.append(record) }
            var bytes = ByteBuffer()
            try builder.finish(baseOffset: 9, into: &bytes)
            #expect(firstDifference(bytes, built.batch) == nil, "\(name)")

            let batch = try RecordBatch(validating: built.batch)
            #expect(batch.isChecksumValid, "\(name)")
            expectSameRecords(try batch.decodeRecords(using: BatchCompressor()), InteropSamples.expected(records, baseOffset: 9))
            let parsed = try #require(try python.parse([bytes]).first)
            #expect(parsed.crcValid, "\(name)")
            expectSameRecords(try parsed.records.map { try $0.record() }, InteropSamples.expected(records, baseOffset: 9))
        }
    }

    // MARK: The partitioner helper

    @Test func kafkaPythonMurmur2MatchesJavaReferenceValues() throws {
        // Partitions out of 1000 that Kafka's Java client picks, from kafka-python's own tests.
        let keys: [[UInt8]] = [[], Array("a".utf8), Array("ab".utf8), Array("abc".utf8), Array("123456789".utf8), [0, 0x20]]
        let result = try python.murmur2(keys.map { ByteBuffer(bytes: $0) }, partitions: 1000)
        #expect(result.partitions == [681, 524, 434, 107, 566, 742])
        #expect(result.hashes.count == keys.count)
        #expect(result.hashesInt32 == result.hashes.map { Int32(bitPattern: $0) })
    }

    @Test func ourPartitionerAgreesWithKafkaPython() throws {
        var generator = SystemRandomNumberGenerator()
        var keys: [ByteBuffer] = [ByteBuffer(), ByteBuffer(string: "device-17"), ByteBuffer(string: "sensors/site-3/pump-2")]
        for length in 1...200 {
            keys.append(ByteBuffer(bytes: (0..<(length % 67 + 1)).map { _ in UInt8.random(in: 0...255, using: &generator) }))
        }
        for partitionCount in [1, 3, 12, 1000] {
            let theirs = try python.murmur2(keys, partitions: partitionCount)
            let ours = keys.map { Int(Murmur2.partition(for: $0, partitionCount: Int32(partitionCount))) }
            #expect(ours == theirs.partitions, "\(partitionCount) partitions")
            #expect(keys.map { Murmur2.hash($0) } == theirs.hashesInt32)
        }
    }
}

// MARK: - Samples and helpers

enum InteropSamples {
    static let codecs: [CompressionCodec] = [.none, .gzip, .snappy, .lz4, .zstd]
    static let stamps: [RecordBatchBuilder.ProducerStamp] = [.none, .init(id: 1234, epoch: 5, baseSequence: 100)]

    /// 240 compressible records covering the format's corners: null, empty and non-null keys
    /// and values, binary bytes, headers with null and empty values and a non-ASCII name,
    /// timestamps that go backwards (negative deltas) and jump ahead, and one ~100 KB value
    /// (multi-byte length varints; several 64 KiB lz4 blocks).
    static func records(count: Int = 240, startingAt start: Int64 = 1_700_000_000_000) -> [Record] {
        (0..<count).map { index in
            var timestamp = start + Int64(index) * 3
            if index % 17 == 9 { timestamp -= 50 }  // before the first record: a negative delta
            if index == 150 { timestamp += 1_000_000_000 }  // the max, far ahead: a long varint
            return Record(timestamp: timestamp, key: key(index), value: value(index), headers: headers(index))
        }
    }

    private static func key(_ index: Int) -> ByteBuffer? {
        switch index % 7 {
        case 0: return nil
        case 3: return ByteBuffer()
        default: return ByteBuffer(string: "device-\(index % 16)")
        }
    }

    private static func value(_ index: Int) -> ByteBuffer? {
        if index == 100 {
            return ByteBuffer(bytes: (0..<100_000).map { UInt8(truncatingIfNeeded: $0 / 50) })
        }
        switch index % 13 {
        case 5: return nil
        case 8: return ByteBuffer()
        case 11: return ByteBuffer(bytes: [0, 1, 0xFF, 0x80, 0x7F, UInt8(truncatingIfNeeded: index)])
        default: return ByteBuffer(string: "{\"sensor\":\"t\(index % 10)\",\"celsius\":\(20 + index % 7).5,\"seq\":\(index)}")
        }
    }

    private static func headers(_ index: Int) -> [RecordHeader] {
        switch index % 4 {
        case 0:
            return []
        case 1:
            return [RecordHeader(key: "trace-id", value: ByteBuffer(string: "abc-\(index)"))]
        case 2:
            return [
                RecordHeader(key: "trace-id", value: nil),
                RecordHeader(key: "ü-region", value: ByteBuffer(string: "eu-west-1")),
            ]
        default:
            return [
                RecordHeader(key: "", value: ByteBuffer()),
                RecordHeader(key: "null", value: nil),
                RecordHeader(key: "bin", value: ByteBuffer(bytes: [0, 0xFF, 0x80])),
            ]
        }
    }

    static let edgeCases: [(name: String, records: [Record])] = [
        ("one record, all null", [Record(timestamp: 0, key: nil, value: nil)]),
        (
            "empty key, value and header",
            [Record(timestamp: 1_700_000_000_000, key: ByteBuffer(), value: ByteBuffer(), headers: [RecordHeader(key: "", value: nil)])]
        ),
        (
            "timestamps out of order",
            ([1_000, 500, 2_000, 1_999, -1] as [Int64]).map { Record(timestamp: $0, key: ByteBuffer(string: "k"), value: ByteBuffer(string: "v")) }
        ),
        (
            "long key and value",
            [
                Record(
                    timestamp: 7, key: ByteBuffer(repeating: 0x6B, count: 300), value: ByteBuffer(repeating: 0x76, count: 20_000),
                    headers: (0..<70).map { RecordHeader(key: "h\($0)", value: ByteBuffer(repeating: UInt8($0), count: $0)) })
            ]
        ),
    ]

    /// `records` as a batch with `baseOffset` decodes them: offsets `baseOffset + index`.
    static func expected(_ records: [Record], baseOffset: Int64) -> [Record] {
        records.enumerated().map { index, record in
            var record = record
            record.offset = baseOffset + Int64(index)
            return record
        }
    }
}

/// The index of the first byte where the readable bytes of `a` and `b` differ (the shorter
/// length when one is a prefix of the other), or nil when they are equal.
private func firstDifference(_ a: ByteBuffer, _ b: ByteBuffer) -> Int? {
    let left = a.readableBytesView
    let right = b.readableBytesView
    for (index, (x, y)) in zip(left, right).enumerated() where x != y {
        return index
    }
    return left.count == right.count ? nil : min(left.count, right.count)
}

/// Records one issue for a count mismatch or for the first record that differs, rather than
/// one per record.
private func expectSameRecords(_ actual: [Record], _ expected: [Record], sourceLocation: SourceLocation = #_sourceLocation) {
    if actual.count != expected.count {
        Issue.record("\(actual.count) records, expected \(expected.count)", sourceLocation: sourceLocation)
    }
    for (index, (got, want)) in zip(actual, expected).enumerated() where got != want {
        Issue.record(
            "record \(index) differs:\n  got      \(describe(got))\n  expected \(describe(want))",
            sourceLocation: sourceLocation)
        return
    }
}

private func describe(_ record: Record) -> String {
    func bytes(_ buffer: ByteBuffer?) -> String {
        guard let buffer else { return "null" }
        let prefix = buffer.readableBytesView.prefix(24).map { String($0, radix: 16) }.joined(separator: " ")
        return "\(buffer.readableBytes)B[\(prefix)\(buffer.readableBytes > 24 ? " …" : "")]"
    }
    let headers = record.headers.map { "\($0.key)=\(bytes($0.value))" }.joined(separator: ", ")
    return "offset \(record.offset) ts \(record.timestamp) key \(bytes(record.key)) value \(bytes(record.value)) headers [\(headers)]"
}
