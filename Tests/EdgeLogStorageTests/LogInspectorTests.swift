@testable import EdgeLogStorage
@testable import EdgeLogInspector
import Foundation
import Logging
import NIOCore
import Testing

/// The offline tools: `dump` lists what is on disk, `verify` finds each kind of damage and says
/// precisely where. Damage is done to copies of a cleanly closed partition in temp dirs.
@Suite struct LogInspectorTests {
    static let logger = Logger(label: "test")
    static let batchCount = 40
    static let recordsPerBatch = 10

    static func config(codec: CompressionCodec, segmentBytes: Int64) -> LogConfig {
        var config = LogConfig()
        config.codec = codec
        config.segmentBytes = segmentBytes
        config.indexIntervalBytes = 512
        return config
    }

    static func records(_ range: Range<Int>) -> [Record] {
        range.map { index in
            Record(
                timestamp: 1_700_000_000_000 + Int64(index), key: ByteBuffer(string: "k\(index)"),
                value: ByteBuffer(string: String(repeating: "v", count: 80) + "\(index)"),
                headers: [RecordHeader(key: "source", value: ByteBuffer(string: "test"))])
        }
    }

    /// A closed partition `<directory>/t-0` of 40 batches of 10 records over several segments
    /// (uncompressed, a batch is about 1.1 KiB; compressed, about a fifth of that).
    static func makePartition(
        _ directory: String, codec: CompressionCodec = .none, segmentBytes: Int64 = 8 * 1024
    ) throws -> String {
        let partition = directory + "/t-0"
        let (log, _) = try PartitionLog.open(
            topic: "t", partition: 0, directory: partition, config: config(codec: codec, segmentBytes: segmentBytes),
            logger: logger)
        for index in 0..<batchCount {
            _ = try log.appendAndWait(records((index * recordsPerBatch)..<((index + 1) * recordsPerBatch)))
        }
        log.close()
        return partition
    }

    /// A healthy partition and a copy of it to damage.
    static func makeCopy(_ directory: String) throws -> (original: String, copy: String) {
        let original = try makePartition(directory)
        let copy = directory + "/copy-t-0"
        try FileManager.default.copyItem(atPath: original, toPath: copy)
        return (original, copy)
    }

    static func segmentNames(_ partition: String) throws -> [String] {
        try FileSystem.list(partition).filter { $0.hasSuffix(".log") }.sorted()
    }

    static func bytes(of path: String) throws -> ByteBuffer {
        ByteBuffer(bytes: try Data(contentsOf: URL(fileURLWithPath: path)))
    }

    /// Where the batches of a segment file are, found without the inspector.
    struct StoredBatch: Equatable {
        var position: Int64
        var size: Int
        var baseOffset: Int64
        var lastOffset: Int64
    }

    static func storedBatches(_ path: String) throws -> [StoredBatch] {
        let bytes = try bytes(of: path)
        var result: [StoredBatch] = []
        var position = 0
        while let size = RecordBatch.frameSize(in: bytes, at: position), size >= RecordBatch.Layout.headerSize,
            position + size <= bytes.readableBytes
        {
            let batch = try RecordBatch(validating: bytes.getSlice(at: position, length: size)!)
            result.append(StoredBatch(position: Int64(position), size: size, baseOffset: batch.baseOffset, lastOffset: batch.lastOffset))
            position += size
        }
        return result
    }

    static func patch(_ path: String, at position: Int64, bytes: [UInt8]) throws {
        try LogFile(path: path, create: false).write(ByteBuffer(bytes: bytes), at: position)
    }

    static func flipByte(_ path: String, at position: Int64) throws {
        let byte = try LogFile(readOnlyPath: path).read(at: position, length: 1).getInteger(at: 0, as: UInt8.self)!
        try patch(path, at: position, bytes: [~byte])
    }

    static func logProblems(_ report: VerifyReport) -> [LogProblem] {
        report.problems.filter { $0.file.hasSuffix(".log") }
    }

    // MARK: Healthy partitions

    @Test(arguments: [CompressionCodec.none, .gzip, .snappy, .lz4, .zstd])
    func dumpListsEveryBatchWithValidChecksums(codec: CompressionCodec) throws {
        let directory = Fixtures.temporaryDirectory()
        defer { Fixtures.remove(directory) }
        let partition = try Self.makePartition(directory, codec: codec, segmentBytes: 2 * 1024)
        let dump = try LogInspector.dump(partitionDirectory: partition, includeRecords: true, compressor: BatchCompressor())

        let names = try Self.segmentNames(partition)
        #expect(names.count > 1, "the partition should span several segments")
        #expect(dump.segments.map(\.fileName) == names)
        #expect(dump.problems.isEmpty)
        for segment in dump.segments {
            #expect(segment.sizeBytes == FileSystem.size(partition + "/" + segment.fileName))
            #expect(segment.baseOffset == segment.batches.first?.baseOffset)
            #expect(segment.batches.map { StoredBatch(position: $0.position, size: $0.sizeBytes, baseOffset: $0.baseOffset, lastOffset: $0.lastOffset) }
                == (try Self.storedBatches(segment.path)))
        }
        let batches = dump.segments.flatMap(\.batches)
        #expect(batches.map(\.baseOffset) == Array(stride(from: 0, to: 400, by: 10)))
        #expect(batches.allSatisfy { $0.lastOffset == $0.baseOffset + 9 && $0.recordCount == 10 })
        #expect(batches.allSatisfy { $0.isChecksumValid && $0.storedChecksum == $0.computedChecksum })
        #expect(batches.allSatisfy { $0.compressionCodec == codec.description && $0.magic == 2 })
        #expect(batches.allSatisfy { $0.producerId == -1 && $0.baseSequence == -1 && $0.timestampType == "CreateTime" })
        #expect(batches.allSatisfy { $0.recordsBytes == $0.sizeBytes - RecordBatch.Layout.records && $0.recordsProblem == nil })
        #expect(batches.first?.maxTimestamp == 1_700_000_000_009)

        let records = batches.flatMap { $0.records ?? [] }
        #expect(records.map(\.offset) == Array(0..<400))
        let first = try #require(records.first)
        #expect(first.timestamp == 1_700_000_000_000)
        #expect(first.key == "k0" && first.keySize == 2)
        #expect(first.valueSize == 81 && first.value == String(repeating: "v", count: 64) + "...")
        #expect(first.headers == [RecordHeaderDump(key: "source", valueSize: 4, value: "test")])

        let recoveryPoint = try #require(dump.checkpoints.first { $0.fileName == "recovery-point.checkpoint" })
        #expect(recoveryPoint.values?["offset"] == 400)
        #expect(recoveryPoint.problem == nil)

        let text = dump.description
        #expect(text.contains("Dumping \(partition)/00000000000000000000.log\nLog starting offset: 0\n"))
        #expect(text.contains("baseOffset: 0 lastOffset: 9 count: 10 baseSequence: -1 lastSequence: -1 producerId: -1"))
        #expect(text.contains("position: 0 CreateTime: 1700000000009 size: \(batches[0].sizeBytes) magic: 2 compresscodec: \(codec)"))
        #expect(text.contains("crc: 0x\(String(format: "%08x", batches[0].storedChecksum)) isvalid: true"))
        #expect(text.contains("| offset: 0 CreateTime: 1700000000000 keySize: 2 valueSize: 81 sequence: -1 headerKeys: [source] key: k0 payload: vvv"))
        #expect(!text.contains("isvalid: false"))

        let json = try JSONEncoder().encode(dump)
        #expect(try JSONDecoder().decode(PartitionDump.self, from: json) == dump)
    }

    @Test func verifyFindsAHealthyPartitionHealthy() throws {
        let directory = Fixtures.temporaryDirectory()
        defer { Fixtures.remove(directory) }
        let partition = try Self.makePartition(directory, codec: .gzip, segmentBytes: 2 * 1024)
        let report = try LogInspector.verify(partitionDirectory: partition, compressor: BatchCompressor())
        #expect(report.problems == [])
        #expect(report.isHealthy)
        let names = try Self.segmentNames(partition)
        #expect(names.count > 1, "the partition should span several segments")
        #expect(report.segmentCount == names.count)
        #expect(report.batchCount == 40)
        #expect(report.recordCount == 400)
        #expect(report.firstOffset == 0 && report.lastOffset == 399)
        #expect(report.sizeBytes == names.reduce(0) { $0 + FileSystem.size(partition + "/" + $1)! })
        #expect(report.description.hasSuffix("offsets 0...399: healthy"))
    }

    @Test func inspectingChangesNoFile() throws {
        let directory = Fixtures.temporaryDirectory()
        defer { Fixtures.remove(directory) }
        let (_, copy) = try Self.makeCopy(directory)
        let last = copy + "/" + (try Self.segmentNames(copy).last!)
        try LogFile(path: last, create: false).truncate(to: FileSystem.size(last)! - 7)
        func snapshot() throws -> [String: ByteBuffer] {
            var files: [String: ByteBuffer] = [:]
            for name in try FileSystem.list(copy) { files[name] = try Self.bytes(of: copy + "/" + name) }
            return files
        }
        let before = try snapshot()
        _ = try LogInspector.dump(partitionDirectory: copy, includeRecords: true)
        _ = try LogInspector.verify(partitionDirectory: copy)
        #expect(try snapshot() == before)
        // The read-only descriptor cannot write.
        #expect(throws: StorageError.self) { try LogFile(readOnlyPath: last).write(ByteBuffer(string: "x"), at: 0) }
    }

    // MARK: Damage

    @Test func aFlippedByteIsAChecksumMismatchAtThatBatch() throws {
        let directory = Fixtures.temporaryDirectory()
        defer { Fixtures.remove(directory) }
        let (original, copy) = try Self.makeCopy(directory)
        let name = try Self.segmentNames(copy)[1]
        let target = try Self.storedBatches(copy + "/" + name)[1]
        // Past the 61-byte header: a byte of the records.
        try Self.flipByte(copy + "/" + name, at: target.position + 70)

        let report = try LogInspector.verify(partitionDirectory: copy)
        #expect(report.problems.count == 1, "\(report)")
        let problem = try #require(report.problems.first)
        #expect(problem.file == name)
        #expect(problem.position == target.position)
        #expect(problem.kind == .checksumMismatch)
        #expect(problem.message.contains("batch of offsets \(target.baseOffset)...\(target.lastOffset)"))
        #expect(problem.message.contains("stored 0x") && problem.message.contains("computed 0x"))
        #expect(!report.isHealthy)
        #expect(report.description.contains("\(name):\(target.position): CRC-32C mismatch"))

        let dump = try LogInspector.dump(partitionDirectory: copy)
        let damaged = dump.segments[1].batches[1]
        #expect(damaged.position == target.position && !damaged.isChecksumValid)
        #expect(damaged.description.contains("computedCrc: 0x") && damaged.description.hasSuffix("isvalid: false"))
        #expect(dump.segments.flatMap(\.batches).filter { !$0.isChecksumValid }.count == 1)
        #expect(try LogInspector.verify(partitionDirectory: original).isHealthy)
    }

    /// A crash in the middle of a write: the last batch is only partly on disk, either its body
    /// (the length points past the end) or even its 12-byte offset and length.
    @Test(arguments: [(keep: Int64(-7), kind: LogProblem.Kind.batchPastEndOfFile), (keep: 5, kind: .tornBatchHeader)])
    func aTruncatedSegmentIsATornTail(keep: Int64, kind: LogProblem.Kind) throws {
        let directory = Fixtures.temporaryDirectory()
        defer { Fixtures.remove(directory) }
        let (_, copy) = try Self.makeCopy(directory)
        let name = try Self.segmentNames(copy).last!
        let path = copy + "/" + name
        let size = FileSystem.size(path)!
        let last = try Self.storedBatches(path).last!
        // keep < 0: cut that many bytes off the end; keep > 0: keep that many bytes of the last batch.
        let newSize = keep < 0 ? size + keep : last.position + keep
        try LogFile(path: path, create: false).truncate(to: newSize)

        let report = try LogInspector.verify(partitionDirectory: copy)
        #expect(Self.logProblems(report).count == 1, "\(report)")
        let problem = try #require(Self.logProblems(report).first)
        #expect(problem.file == name && problem.position == last.position && problem.kind == kind)
        if kind == .batchPastEndOfFile {
            #expect(problem.message.contains("batch length \(last.size - 12) points past the end of the file"))
            #expect(problem.message.contains("would end at byte \(last.position + Int64(last.size)), but the file ends at byte \(newSize)"))
        } else {
            #expect(problem.message.contains("torn batch header: 5 bytes at the end of the file"))
        }
        // The clean close's recovery point now lies past the end.
        #expect(report.problems.contains { $0.kind == .recoveryPoint && $0.message.contains("position \(size) lies outside \(name)") })
        #expect(report.lastOffset == last.baseOffset - 1)

        // Dump lists the whole batches and reports the tail at the same place instead of throwing.
        let dump = try LogInspector.dump(partitionDirectory: copy)
        let segment = try #require(dump.segments.last)
        #expect(segment.batches.last?.lastOffset == last.baseOffset - 1)
        #expect(segment.problems == [problem])
        #expect(segment.description.contains("Problem at position \(last.position): "))
    }

    @Test func aBatchLengthPastTheEndOfTheFileIsReportedWithTheNumbers() throws {
        let directory = Fixtures.temporaryDirectory()
        defer { Fixtures.remove(directory) }
        let (_, copy) = try Self.makeCopy(directory)
        let names = try Self.segmentNames(copy)
        let path = copy + "/" + names[0]
        let size = FileSystem.size(path)!
        let target = try Self.storedBatches(path)[1]
        try Self.patch(path, at: target.position + Int64(RecordBatch.Layout.batchLength), bytes: [0x00, 0x0F, 0x42, 0x40])  // 1_000_000

        let report = try LogInspector.verify(partitionDirectory: copy)
        let expected = LogProblem(
            file: names[0], position: target.position, kind: .batchPastEndOfFile,
            message: "batch length 1000000 points past the end of the file: the batch would end at byte \(target.position + 1_000_012), but the file ends at byte \(size), \(size - target.position) bytes after the batch's start (a torn write if this is the last batch)")
        #expect(Self.logProblems(report).filter { $0.file == names[0] } == [expected])
        // The scan of that segment stops there, so the next one seems to start after a gap.
        let nextBase = try #require(LogSegment.baseOffset(fromFileName: names[1]))
        #expect(report.problems.contains(
            LogProblem(
                file: names[1], position: 0, kind: .offsetGap,
                message: "offsets \(target.baseOffset)...\(nextBase - 1) are missing: \(names[0]) ends before offset \(target.baseOffset) and this segment starts at \(nextBase)")))
    }

    @Test func anIndexEntryInsideABatchIsReported() throws {
        let directory = Fixtures.temporaryDirectory()
        defer { Fixtures.remove(directory) }
        let (_, copy) = try Self.makeCopy(directory)
        let name = try Self.segmentNames(copy)[0]
        let indexName = LogSegment.fileName(baseOffset: 0, suffix: ".index")
        let index = try Self.bytes(of: copy + "/" + indexName)
        #expect(index.readableBytes >= 16, "the index should have entries")
        let relative = index.getInteger(at: 8, as: UInt32.self)!
        let position = index.getInteger(at: 12, as: UInt32.self)!
        let batch = try #require(try Self.storedBatches(copy + "/" + name).first { $0.position == Int64(position) })
        #expect(batch.baseOffset == Int64(relative))
        try Self.patch(copy + "/" + indexName, at: 12, bytes: withUnsafeBytes(of: (position + 3).bigEndian, Array.init))

        let report = try LogInspector.verify(partitionDirectory: copy)
        #expect(report.problems == [
            LogProblem(
                file: indexName, position: 8, kind: .indexEntry,
                message: "entry 1 (offset \(relative), position \(position + 3)) is not the start of a batch: it lies 3 bytes inside the batch at position \(position) (offsets \(batch.baseOffset)...\(batch.lastOffset))")
        ])
    }

    @Test func anIndexEntryAtTheWrongBatchOrPastTheEndIsReported() throws {
        let directory = Fixtures.temporaryDirectory()
        defer { Fixtures.remove(directory) }
        let (_, copy) = try Self.makeCopy(directory)
        let indexName = LogSegment.fileName(baseOffset: 0, suffix: ".index")
        let batches = try Self.storedBatches(copy + "/" + (try Self.segmentNames(copy)[0]))
        // Entry 0 points at the start of batch 1 with batch 2's offset; entry 1 past the file.
        var entries = ByteBuffer()
        entries.writeInteger(UInt32(batches[2].baseOffset))
        entries.writeInteger(UInt32(batches[1].position))
        entries.writeInteger(UInt32(batches[2].baseOffset + 1))
        entries.writeInteger(UInt32(1 << 20))
        try LogFile(path: copy + "/" + indexName, create: false).truncate(to: 0)
        try LogFile(path: copy + "/" + indexName, create: false).write(entries, at: 0)
        let end = batches.last!.position + Int64(batches.last!.size)

        let problems = try LogInspector.verify(partitionDirectory: copy).problems
        #expect(problems.map(\.position) == [0, 8])
        #expect(problems.allSatisfy { $0.file == indexName && $0.kind == .indexEntry })
        #expect(problems.first?.message == "entry 0 (offset \(batches[2].baseOffset), position \(batches[1].position)) points at the batch of offsets \(batches[1].baseOffset)...\(batches[1].lastOffset), whose base offset is not \(batches[2].baseOffset)")
        #expect(problems.last?.message == "entry 1 (offset \(batches[2].baseOffset + 1), position 1048576) points past the last whole batch, which ends at byte \(end) of 00000000000000000000.log")
    }

    @Test func aTimeIndexEntryBelowTheRecordsItCoversIsReported() throws {
        let directory = Fixtures.temporaryDirectory()
        defer { Fixtures.remove(directory) }
        let (_, copy) = try Self.makeCopy(directory)
        let timeIndexName = LogSegment.fileName(baseOffset: 0, suffix: ".timeindex")
        let index = try Self.bytes(of: copy + "/" + timeIndexName)
        let timestamp = index.getInteger(at: 0, as: Int64.self)!
        let offset = Int64(index.getInteger(at: 8, as: UInt32.self)!)
        #expect(timestamp == 1_700_000_000_000 + offset)
        try Self.patch(copy + "/" + timeIndexName, at: 0, bytes: withUnsafeBytes(of: (timestamp - 5).bigEndian, Array.init))

        let report = try LogInspector.verify(partitionDirectory: copy)
        #expect(report.problems == [
            LogProblem(
                file: timeIndexName, position: 0, kind: .timeIndexEntry,
                message: "entry 0 says every record up to offset \(offset) has a timestamp of at most \(timestamp - 5), but offset \(offset) has timestamp \(timestamp)")
        ])
    }

    @Test func aTornIndexEntryAndAMissingIndexAreReported() throws {
        let directory = Fixtures.temporaryDirectory()
        defer { Fixtures.remove(directory) }
        let (_, copy) = try Self.makeCopy(directory)
        let indexName = LogSegment.fileName(baseOffset: 0, suffix: ".index")
        let size = FileSystem.size(copy + "/" + indexName)!
        try LogFile(path: copy + "/" + indexName, create: false).truncate(to: size - 3)
        let base = try #require(LogSegment.baseOffset(fromFileName: try Self.segmentNames(copy)[1]))
        let timeIndexName = LogSegment.fileName(baseOffset: base, suffix: ".timeindex")
        try FileSystem.remove(copy + "/" + timeIndexName)

        let report = try LogInspector.verify(partitionDirectory: copy)
        #expect(Set(report.problems) == [
            LogProblem(
                file: indexName, position: size - 8, kind: .indexFileSize,
                message: "\(size - 3) bytes is not a multiple of the 8-byte entry: 5 bytes of a torn entry at the end"),
            LogProblem(file: timeIndexName, position: nil, kind: .missingIndex, message: "missing; an open rebuilds it from the log"),
        ])
    }

    @Test func aMissingSegmentIsAnOffsetGap() throws {
        let directory = Fixtures.temporaryDirectory()
        defer { Fixtures.remove(directory) }
        let (_, copy) = try Self.makeCopy(directory)
        let names = try Self.segmentNames(copy)
        let bases = names.map { LogSegment.baseOffset(fromFileName: $0)! }
        for suffix in [".log", ".index", ".timeindex"] {
            try FileSystem.remove(copy + "/" + LogSegment.fileName(baseOffset: bases[1], suffix: suffix))
        }
        let report = try LogInspector.verify(partitionDirectory: copy)
        #expect(report.problems == [
            LogProblem(
                file: names[2], position: 0, kind: .offsetGap,
                message: "offsets \(bases[1])...\(bases[2] - 1) are missing: \(names[0]) ends before offset \(bases[1]) and this segment starts at \(bases[2])")
        ])
    }

    @Test func aCorruptCheckpointIsReported() throws {
        let directory = Fixtures.temporaryDirectory()
        defer { Fixtures.remove(directory) }
        let (_, copy) = try Self.makeCopy(directory)
        let path = copy + "/" + PartitionLog.recoveryPointFile
        let text = String(buffer: try Self.bytes(of: path))
        #expect(text.contains("offset 400\n"))
        let damaged = text.replacingOccurrences(of: "offset 400\n", with: "offset 401\n")
        try LogFile(path: path, create: false).write(ByteBuffer(string: damaged), at: 0)

        let report = try LogInspector.verify(partitionDirectory: copy)
        #expect(report.problems.count == 1, "\(report)")
        let problem = try #require(report.problems.first)
        #expect(problem.file == PartitionLog.recoveryPointFile && problem.position == nil && problem.kind == .corruptCheckpoint)
        #expect(problem.message.hasPrefix("checksum mismatch: stored "))
        let dump = try LogInspector.dump(partitionDirectory: copy)
        #expect(dump.checkpoints.first { $0.fileName == PartitionLog.recoveryPointFile }?.problem == problem.message)
    }

    @Test func aRecoveryPointThatDoesNotMatchTheLogIsReported() throws {
        let directory = Fixtures.temporaryDirectory()
        defer { Fixtures.remove(directory) }
        let (_, copy) = try Self.makeCopy(directory)
        let name = try Self.segmentNames(copy).last!
        let base = LogSegment.baseOffset(fromFileName: name)!
        let batches = try Self.storedBatches(copy + "/" + name)
        // A valid checkpoint (its CRC matches) whose offset is not the one at its position.
        try Checkpoint(["offset": 999, "segment": base, "position": batches[1].position])
            .write(to: copy + "/" + PartitionLog.recoveryPointFile)
        let report = try LogInspector.verify(partitionDirectory: copy)
        #expect(report.problems.map(\.message) == [
            "offset 999 does not match position \(batches[1].position) of \(name), where offset \(batches[1].baseOffset) starts",
            "offset 999 lies past the log end offset 400",
        ])
        #expect(report.problems.allSatisfy { $0.kind == .recoveryPoint && $0.file == PartitionLog.recoveryPointFile })
    }
}
