@testable import EdgeLogStorage
import Foundation
import Logging
import NIOCore
import Testing

/// Crash recovery: what a reopen finds after torn writes, flipped bytes and damaged files.
@Suite struct RecoveryTests {
    /// A closed partition with `batches` batches of 10 records over several segments.
    static func makePartition(_ directory: String, batches: Int = 60, config: LogConfig = smallSegments) throws -> String {
        let (log, _) = try PartitionLogTests.open(directory, config: config)
        for index in 0..<batches {
            _ = try log.appendAndWait(PartitionLogTests.records((index * 10)..<(index * 10 + 10)))
        }
        log.close()
        return directory + "/t-0"
    }

    static var smallSegments: LogConfig {
        var config = LogConfig()
        config.codec = .none
        config.segmentBytes = 8 * 1024
        config.indexIntervalBytes = 512
        return config
    }

    static func segmentFiles(_ partition: String) throws -> [String] {
        try FileSystem.list(partition).filter { $0.hasSuffix(".log") }.sorted().map { partition + "/" + $0 }
    }

    static func forgetRecoveryPoint(_ partition: String) throws {
        try FileSystem.remove(partition + "/" + PartitionLog.recoveryPointFile)
    }

    static func patch(_ path: String, at position: Int64, bytes: [UInt8]) throws {
        let file = try LogFile(path: path, create: false)
        try file.write(ByteBuffer(bytes: bytes), at: position)
    }

    static func allOffsets(_ log: PartitionLog) throws -> [Int64] {
        try log.readRecords(from: log.logStartOffset, maxBytes: 1 << 26, compressor: BatchCompressor()).map(\.offset)
    }

    @Test func aTornTailIsCutAndReported() throws {
        let directory = Fixtures.temporaryDirectory()
        defer { Fixtures.remove(directory) }
        let partition = try Self.makePartition(directory)
        let last = try Self.segmentFiles(partition).last!
        let size = FileSystem.size(last)!
        // A crash in the middle of a write: the last batch is only partly on disk.
        try LogFile(path: last, create: false).truncate(to: size - 7)
        // The recovery point of the clean close lies past the new end, so the segment is scanned.
        let (log, report) = try PartitionLogTests.open(directory, config: Self.smallSegments)
        defer { log.close() }
        #expect(report.truncations.count == 1)
        let cut = try #require(report.truncations.first)
        #expect(cut.segment == last)
        #expect(cut.firstLostOffset == 590)
        #expect(cut.reason.contains("torn batch"))
        #expect(log.logEndOffset == 590)
        #expect(try Self.allOffsets(log) == Array(0..<590))
        #expect(FileSystem.size(last)! == cut.position)
    }

    @Test func aFlippedByteInsideABatchCutsFromThatBatch() throws {
        let directory = Fixtures.temporaryDirectory()
        defer { Fixtures.remove(directory) }
        let partition = try Self.makePartition(directory)
        let last = try Self.segmentFiles(partition).last!
        let base = LogSegment.baseOffset(fromFileName: String(last.split(separator: "/").last!))!
        // Flip a byte inside the second batch of the last segment (past its 61-byte header).
        let first = try LogSegment(directory: partition, baseOffset: base, indexIntervalBytes: 512, nowMs: 0)
            .readHeader(at: 0, limit: .max)!
        try Self.patch(last, at: Int64(first.size) + 70, bytes: [0xFF])
        try Self.forgetRecoveryPoint(partition)
        let (log, report) = try PartitionLogTests.open(directory, config: Self.smallSegments)
        defer { log.close() }
        #expect(report.checkpointProblem == "no recovery point checkpoint")
        let cut = try #require(report.truncations.first)
        #expect(cut.position == Int64(first.size))
        #expect(cut.firstLostOffset == base + 10)
        #expect(cut.reason.contains("CRC mismatch"))
        #expect(log.logEndOffset == base + 10)
        #expect(try Self.allOffsets(log) == Array(0..<(base + 10)))
    }

    @Test func aBatchLengthPointingPastTheFileIsTorn() throws {
        let directory = Fixtures.temporaryDirectory()
        defer { Fixtures.remove(directory) }
        let partition = try Self.makePartition(directory)
        let last = try Self.segmentFiles(partition).last!
        try Self.patch(last, at: 8, bytes: [0x00, 0x10, 0x00, 0x00])  // 1 MiB, far past the file
        try Self.forgetRecoveryPoint(partition)
        let (log, report) = try PartitionLogTests.open(directory, config: Self.smallSegments)
        defer { log.close() }
        let cut = try #require(report.truncations.first)
        #expect(cut.position == 0)
        #expect(cut.reason.contains("torn batch"))
        #expect(FileSystem.size(last)! == 0)
        // The earlier segments are intact.
        let base = LogSegment.baseOffset(fromFileName: String(last.split(separator: "/").last!))!
        #expect(log.logEndOffset == base)
        #expect(try Self.allOffsets(log) == Array(0..<base))
    }

    @Test func anImpossibleBatchLengthIsReported() throws {
        let directory = Fixtures.temporaryDirectory()
        defer { Fixtures.remove(directory) }
        let partition = try Self.makePartition(directory)
        let last = try Self.segmentFiles(partition).last!
        try Self.patch(last, at: 8, bytes: [0xFF, 0xFF, 0xFF, 0xF0])  // negative
        try Self.forgetRecoveryPoint(partition)
        let (log, report) = try PartitionLogTests.open(directory, config: Self.smallSegments)
        defer { log.close() }
        #expect(report.truncations.first?.reason.contains("impossible") == true)
    }

    @Test func aCorruptCheckpointFallsBackToFullRecovery() throws {
        let directory = Fixtures.temporaryDirectory()
        defer { Fixtures.remove(directory) }
        let partition = try Self.makePartition(directory)
        let path = partition + "/" + PartitionLog.recoveryPointFile
        var text = try String(contentsOfFile: path, encoding: .utf8)
        text = text.replacingOccurrences(of: "offset 600", with: "offset 900")
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        let (log, report) = try PartitionLogTests.open(directory, config: Self.smallSegments)
        defer { log.close() }
        #expect(report.checkpointProblem?.contains("checksum mismatch") == true)
        #expect(report.segmentsScanned == (try Self.segmentFiles(partition)).count)
        #expect(!report.cutData)
        #expect(log.logEndOffset == 600)
        // The next open trusts the rewritten checkpoint again.
        log.close()
        let (again, second) = try PartitionLogTests.open(directory, config: Self.smallSegments)
        #expect(second.checkpointProblem == nil && second.batchesScanned == 0)
        again.close()
    }

    @Test func missingAndDamagedIndexesAreRebuilt() throws {
        let directory = Fixtures.temporaryDirectory()
        defer { Fixtures.remove(directory) }
        let partition = try Self.makePartition(directory)
        let segments = try Self.segmentFiles(partition)
        #expect(segments.count >= 4)
        let missing = segments[0].replacingOccurrences(of: ".log", with: ".index")
        try FileSystem.remove(missing)
        // An index entry pointing nowhere: position past the end of its segment.
        let damaged = segments[1].replacingOccurrences(of: ".log", with: ".index")
        try Self.patch(damaged, at: 4, bytes: [0x7F, 0xFF, 0xFF, 0xFF])
        // An index entry pointing into the middle of a batch.
        let misaligned = segments[2].replacingOccurrences(of: ".log", with: ".index")
        let size = FileSystem.size(misaligned)!
        try Self.patch(misaligned, at: size - 4, bytes: [0x00, 0x00, 0x00, 0x05])
        let (log, report) = try PartitionLogTests.open(directory, config: Self.smallSegments)
        defer { log.close() }
        #expect(Set(report.rebuiltIndexes) == Set(segments[0...2]))
        #expect(!report.cutData)
        #expect(FileSystem.exists(missing))
        #expect(log.segments[0].indexEntryCount > 0)
        #expect(try Self.allOffsets(log) == Array(0..<600))
        for offset in stride(from: Int64(0), to: 600, by: 37) {
            let records = try log.readRecords(from: offset, maxRecords: 1, compressor: BatchCompressor())
            #expect(records.first?.offset == offset)
        }
    }

    @Test func zeroLengthSegmentsAreHarmless() throws {
        let directory = Fixtures.temporaryDirectory()
        defer { Fixtures.remove(directory) }
        let partition = try Self.makePartition(directory)
        // A crash right after a roll leaves an empty segment at the end.
        let empty = partition + "/" + LogSegment.fileName(baseOffset: 600, suffix: ".log")
        _ = try LogFile(path: empty, create: true)
        try Self.forgetRecoveryPoint(partition)
        let (log, report) = try PartitionLogTests.open(directory, config: Self.smallSegments)
        #expect(!report.cutData)
        #expect(log.logEndOffset == 600)
        #expect(log.segments.last?.baseOffset == 600)
        let result = try log.appendAndWait(PartitionLogTests.records(0..<5))
        #expect(result.baseOffset == 600)
        log.close()
        let (reopened, _) = try PartitionLogTests.open(directory, config: Self.smallSegments)
        #expect(try Self.allOffsets(reopened) == Array(0..<605))
        reopened.close()
    }

    @Test func anEmptyDirectoryGetsAFirstSegmentAndStrayFilesGo() throws {
        let directory = Fixtures.temporaryDirectory()
        defer { Fixtures.remove(directory) }
        try FileSystem.createDirectory(directory + "/t-0")
        _ = try LogFile(path: directory + "/t-0/recovery-point.checkpoint.tmp", create: true)
        _ = try LogFile(path: directory + "/t-0/" + LogSegment.fileName(baseOffset: 77, suffix: ".index"), create: true)
        let (log, report) = try PartitionLogTests.open(directory)
        defer { log.close() }
        #expect(Set(report.removedFiles) == ["recovery-point.checkpoint.tmp", LogSegment.fileName(baseOffset: 77, suffix: ".index")])
        #expect(log.logEndOffset == 0)
        #expect(FileSystem.exists(directory + "/t-0/00000000000000000000.log"))
    }

    @Test func recoveryFromTheMiddleOfASegmentKeepsItsLargestTimestamp() throws {
        let directory = Fixtures.temporaryDirectory()
        defer { Fixtures.remove(directory) }
        var config = LogConfig()
        config.indexIntervalBytes = 1 << 30  // no index entries: only the checkpoint knows the max
        let (log, _) = try PartitionLogTests.open(directory, config: config)
        let base: Int64 = 1_700_000_000_000
        _ = try log.appendAndWait([Record(timestamp: base + 500, value: ByteBuffer(string: "late"))])
        _ = try log.appendAndWait([Record(timestamp: base + 100, value: ByteBuffer(string: "early"))])
        log.writeRecoveryPoint()
        _ = try log.appendAndWait([Record(timestamp: base + 200, value: ByteBuffer(string: "after"))])
        let crashed = Fixtures.temporaryDirectory()
        defer { Fixtures.remove(crashed) }
        try FileManager.default.copyItem(atPath: directory + "/t-0", toPath: crashed + "/t-0")
        log.close()
        let (recovered, report) = try PartitionLogTests.open(crashed, config: config)
        defer { recovered.close() }
        #expect(report.batchesScanned == 1, "only the batch past the recovery point")
        #expect(recovered.segments[0].maxTimestamp == base + 500)
        #expect(try recovered.offset(forTimestamp: base + 150, compressor: BatchCompressor()) == 0)
        #expect(try recovered.offset(forTimestamp: base + 501, compressor: BatchCompressor()) == 3)
    }

    @Test func aCrashAfterAcknowledgedAppendsLosesNothing() throws {
        // A crash without close: nothing beyond the appended, acknowledged bytes exists, and the
        // recovery point is older than the end.
        let directory = Fixtures.temporaryDirectory()
        defer { Fixtures.remove(directory) }
        var config = Self.smallSegments
        config.checkpointIntervalMs = 3_600_000
        let (log, _) = try PartitionLogTests.open(directory, config: config)
        for index in 0..<40 { _ = try log.appendAndWait(PartitionLogTests.records((index * 10)..<(index * 10 + 10))) }
        // Simulate the crash: copy the files as they are now, without closing.
        let crashed = Fixtures.temporaryDirectory()
        defer { Fixtures.remove(crashed) }
        try FileManager.default.copyItem(atPath: directory + "/t-0", toPath: crashed + "/t-0")
        log.close()
        let (recovered, report) = try PartitionLogTests.open(crashed, config: config)
        defer { recovered.close() }
        #expect(report.batchesScanned > 0)
        #expect(!report.cutData)
        #expect(try Self.allOffsets(recovered) == Array(0..<400))
    }
}
