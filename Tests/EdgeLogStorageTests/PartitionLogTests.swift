@testable import EdgeLogStorage
import Foundation
import Logging
import NIOCore
import Testing

/// Opening, appending, reading, rolling and reopening one partition.
@Suite struct PartitionLogTests {
    static let logger = Logger(label: "test")

    static func open(_ directory: String, config: LogConfig = LogConfig()) throws -> (PartitionLog, RecoveryReport) {
        try PartitionLog.open(topic: "t", partition: 0, directory: directory + "/t-0", config: config, logger: logger)
    }

    static func records(_ range: Range<Int>, size: Int = 100) -> [Record] {
        range.map { index in
            Record(timestamp: 1_700_000_000_000 + Int64(index), key: ByteBuffer(string: "k\(index)"),
                   value: ByteBuffer(string: String(repeating: "v", count: max(0, size - 20)) + "\(index)"))
        }
    }

    /// A closed partition is freed: the fuzzer's leak checker found every one kept alive by a
    /// cycle through its writer thread (a few hundred bytes per deleted topic). Negative
    /// control: with the appender storing its Thread again, the reference never goes away.
    @Test func aClosedPartitionIsFreed() async throws {
        let directory = Fixtures.temporaryDirectory()
        defer { Fixtures.remove(directory) }
        weak var weakLog: PartitionLog?
        do {
            let (log, _) = try Self.open(directory)
            _ = try await log.append(Self.records(0..<3))
            log.close()
            weakLog = log
        }
        // The writer thread drops its last reference just after close() returns.
        let deadline = ContinuousClock.now + .seconds(10)
        while weakLog != nil && ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(10)) }
        #expect(weakLog == nil, "the closed partition is still referenced")
    }

    @Test(arguments: [CompressionCodec.none, .gzip, .snappy, .lz4, .zstd])
    func appendsGetDenseOffsetsAndReadBack(codec: CompressionCodec) async throws {
        let directory = Fixtures.temporaryDirectory()
        defer { Fixtures.remove(directory) }
        var config = LogConfig()
        config.codec = codec
        let (log, report) = try Self.open(directory, config: config)
        #expect(report.logEndOffset == 0 && !report.cutData)
        let first = try await log.append(Self.records(0..<10))
        let second = try await log.append(Self.records(10..<25))
        #expect(first == AppendResult(baseOffset: 0, lastOffset: 9))
        #expect(second == AppendResult(baseOffset: 10, lastOffset: 24))
        #expect(log.logEndOffset == 25)
        let read = try log.readRecords(from: 0, compressor: BatchCompressor())
        #expect(read.map(\.offset) == Array(0..<25))
        #expect(read.map(\.value) == Self.records(0..<25).map(\.value))
        // From the middle of a batch, a reader gets the whole batch and skips what it did not ask for.
        let middle = try log.readRecords(from: 13, compressor: BatchCompressor())
        #expect(middle.first?.offset == 13)
        let stored = try log.read(from: 13, maxBytes: 1 << 20)
        let batch = try RecordBatch(validating: stored.getSlice(at: 0, length: RecordBatch.frameSize(in: stored, at: 0)!)!)
        #expect(batch.baseOffset == 10 && batch.codec == codec)
        log.close()
    }

    @Test func readingOutsideTheLogIsAPreciseError() async throws {
        let directory = Fixtures.temporaryDirectory()
        defer { Fixtures.remove(directory) }
        let (log, _) = try Self.open(directory)
        _ = try await log.append(Self.records(0..<3))
        #expect(try log.read(from: 3, maxBytes: 100).readableBytes == 0)
        #expect(throws: StorageError.offsetOutOfRange(offset: 4, logStart: 0, logEnd: 3)) {
            try log.read(from: 4, maxBytes: 100)
        }
        #expect(throws: StorageError.offsetOutOfRange(offset: -1, logStart: 0, logEnd: 3)) {
            try log.read(from: -1, maxBytes: 100)
        }
        log.close()
    }

    @Test func aReadReturnsAtLeastOneWholeBatchEvenOverMaxBytes() async throws {
        let directory = Fixtures.temporaryDirectory()
        defer { Fixtures.remove(directory) }
        var config = LogConfig()
        config.codec = .none
        let (log, _) = try Self.open(directory, config: config)
        _ = try await log.append(Self.records(0..<50, size: 200))
        let bytes = try log.read(from: 0, maxBytes: 10)
        let size = RecordBatch.frameSize(in: bytes, at: 0)!
        #expect(bytes.readableBytes == size)
        #expect(size > 5_000)
        log.close()
    }

    @Test func concurrentProducersShareGroupCommits() async throws {
        let directory = Fixtures.temporaryDirectory()
        defer { Fixtures.remove(directory) }
        var config = LogConfig()
        config.flush = .always
        config.lingerMicroseconds = 2000
        let (log, _) = try Self.open(directory, config: config)
        let results = try await withThrowingTaskGroup(of: [AppendResult].self) { group in
            for producer in 0..<64 {
                group.addTask {
                    var results: [AppendResult] = []
                    for round in 0..<5 {
                        results.append(try await log.append(Self.records((producer * 100 + round)..<(producer * 100 + round + 1))))
                    }
                    return results
                }
            }
            var all: [AppendResult] = []
            for try await results in group { all += results }
            return all
        }
        #expect(results.count == 320)
        #expect(Set(results.map(\.baseOffset)) == Set(0..<320))
        #expect(log.logEndOffset == 320)
        // Fewer batches than appends: concurrent appends were committed together.
        var batches = 0
        var bytes = try log.read(from: 0, maxBytes: 1 << 24)
        while let size = RecordBatch.frameSize(in: bytes, at: bytes.readerIndex), bytes.readSlice(length: size) != nil {
            batches += 1
        }
        #expect(batches < 320)
        #expect(try log.readRecords(from: 0, compressor: BatchCompressor()).map(\.offset) == Array(0..<320))
        log.close()
    }

    @Test func readersRacingTheWriterSeeOnlyWholeCommittedBatches() async throws {
        let directory = Fixtures.temporaryDirectory()
        defer { Fixtures.remove(directory) }
        var config = LogConfig()
        config.codec = .none
        config.segmentBytes = 32 * 1024
        config.flush = .interval(milliseconds: 5)
        let (log, _) = try Self.open(directory, config: config)
        let total = 3000
        async let written: Void = {
            for start in stride(from: 0, to: total, by: 10) {
                _ = try await log.append(Self.records(start..<(start + 10)))
            }
        }()
        // Follow the log while the writer appends and rolls segments.
        let compressor = BatchCompressor()
        var rounds = 0
        var next: Int64 = 0
        while next < Int64(total) {
            let end = log.logEndOffset
            let records = try log.readRecords(from: next, maxBytes: 1 << 26, compressor: compressor)
            #expect(next + Int64(records.count) >= end, "everything committed before the read is readable")
            #expect(records.map(\.offset) == Array(next..<(next + Int64(records.count))), "no gaps, no duplicates")
            next += Int64(records.count)
            rounds += 1
            if records.isEmpty { try await Task.sleep(for: .milliseconds(1)) }
        }
        try await written
        #expect(rounds > 1)
        #expect(log.segments.count > 1)
        log.close()
    }

    @Test func segmentsRollBySizeAndIndexesFindEveryOffset() async throws {
        let directory = Fixtures.temporaryDirectory()
        defer { Fixtures.remove(directory) }
        var config = LogConfig()
        config.codec = .none
        config.segmentBytes = 16 * 1024
        config.indexIntervalBytes = 1024
        let (log, _) = try Self.open(directory, config: config)
        for start in stride(from: 0, to: 1000, by: 10) {
            _ = try await log.append(Self.records(start..<(start + 10)))
        }
        #expect(log.segments.count > 4)
        #expect(log.segments.allSatisfy { $0.sizeBytes <= 16 * 1024 })
        #expect(log.segments.dropLast().allSatisfy { $0.indexEntryCount > 0 }, "\(log.segments.map { ($0.indexEntryCount, $0.sizeBytes) })")
        let names = try FileSystem.list(directory + "/t-0")
        #expect(names.contains("00000000000000000000.log"))
        #expect(names.contains(LogSegment.fileName(baseOffset: log.segments[1].baseOffset, suffix: ".index")))
        for offset in [0, 1, 9, 10, 99, 500, 777, 999] as [Int64] {
            let records = try log.readRecords(from: offset, maxRecords: 1, compressor: BatchCompressor())
            #expect(records.first?.offset == offset)
        }
        log.close()
    }

    @Test func segmentsRollByAge() async throws {
        let directory = Fixtures.temporaryDirectory()
        defer { Fixtures.remove(directory) }
        var config = LogConfig()
        config.segmentMs = 5
        let (log, _) = try Self.open(directory, config: config)
        _ = try await log.append(Self.records(0..<3))
        let created = log.segments[0].rollTimestampMs
        while wallClockMs() <= created + 5 { await Task.yield() }
        _ = try await log.append(Self.records(3..<6))
        #expect(log.segments.map(\.baseOffset) == [0, 3])
        log.close()
    }

    @Test func timestampLookupFindsTheFirstRecordAtOrAfter() async throws {
        let directory = Fixtures.temporaryDirectory()
        defer { Fixtures.remove(directory) }
        var config = LogConfig()
        config.segmentBytes = 8 * 1024
        config.indexIntervalBytes = 512
        let (log, _) = try Self.open(directory, config: config)
        for start in stride(from: 0, to: 600, by: 20) {
            _ = try await log.append(Self.records(start..<(start + 20)))
        }
        let base: Int64 = 1_700_000_000_000
        let compressor = BatchCompressor()
        #expect(try log.offset(forTimestamp: 0, compressor: compressor) == 0)
        #expect(try log.offset(forTimestamp: base + 321, compressor: compressor) == 321)
        #expect(try log.offset(forTimestamp: base + 599, compressor: compressor) == 599)
        #expect(try log.offset(forTimestamp: base + 10_000, compressor: compressor) == 600)
        log.close()
    }

    @Test func reopenAfterCleanCloseScansNothing() async throws {
        let directory = Fixtures.temporaryDirectory()
        defer { Fixtures.remove(directory) }
        var config = LogConfig()
        config.segmentBytes = 32 * 1024
        let (log, _) = try Self.open(directory, config: config)
        for start in stride(from: 0, to: 2000, by: 50) { _ = try await log.append(Self.records(start..<(start + 50))) }
        log.close()
        let (reopened, report) = try Self.open(directory, config: config)
        #expect(report.logEndOffset == 2000)
        #expect(report.batchesScanned == 0)
        #expect(report.checkpointProblem == nil && !report.cutData && report.rebuiltIndexes.isEmpty)
        let next = try await reopened.append(Self.records(0..<1))
        #expect(next.baseOffset == 2000)
        #expect(try reopened.readRecords(from: 1990, compressor: BatchCompressor()).map(\.offset) == Array(1990...2000))
        reopened.close()
    }

    @Test func recordLargerThanTheBatchLimitIsRefusedAndNothingIsWritten() async throws {
        let directory = Fixtures.temporaryDirectory()
        defer { Fixtures.remove(directory) }
        var config = LogConfig()
        config.maxBatchBytes = 4096
        let (log, _) = try Self.open(directory, config: config)
        let big = Record(timestamp: 1, value: ByteBuffer(repeating: 1, count: 5000))
        await #expect(throws: StorageError.self) { try await log.append(Self.records(0..<2) + [big]) }
        do {
            _ = try await log.append([big])
            Issue.record("expected recordTooLarge")
        } catch let error as StorageError {
            guard case .recordTooLarge(let bytes, let maxBytes) = error else {
                Issue.record("unexpected \(error)")
                return
            }
            #expect(bytes > 5000 && maxBytes == 4096)
        }
        #expect(log.logEndOffset == 0)
        // Many small records over the limit in total are split into several batches.
        let result = try await log.append(Self.records(0..<200))
        #expect(result.recordCount == 200)
        log.close()
    }

    @Test func appendedStoredBatchesKeepTheirBytesAndGetNewOffsets() async throws {
        let directory = Fixtures.temporaryDirectory()
        defer { Fixtures.remove(directory) }
        let (log, _) = try Self.open(directory)
        _ = try await log.append(Self.records(0..<5))
        var batches = try Fixtures.batch(records: Self.records(0..<7), baseOffset: 0, codec: .zstd)
        batches.writeImmutableBuffer(try Fixtures.batch(records: Self.records(7..<9), baseOffset: 0, codec: .lz4))
        let result = try await log.append(batches: batches)
        #expect(result == AppendResult(baseOffset: 5, lastOffset: 13))
        let read = try log.readRecords(from: 5, compressor: BatchCompressor())
        #expect(read.map(\.offset) == Array(5...13))
        var corrupt = try Fixtures.batch(records: Self.records(0..<2))
        corrupt.setInteger(UInt8(0xAA), at: corrupt.writerIndex - 1)
        await #expect(throws: StorageError.self) { try await log.append(batches: corrupt) }
        #expect(log.logEndOffset == 14)
        log.close()
    }

    @Test func appendsAfterCloseFail() async throws {
        let directory = Fixtures.temporaryDirectory()
        defer { Fixtures.remove(directory) }
        let (log, _) = try Self.open(directory)
        log.close()
        await #expect(throws: StorageError.closed) { try await log.append(Self.records(0..<1)) }
    }
}
