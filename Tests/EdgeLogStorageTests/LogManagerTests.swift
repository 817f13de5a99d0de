@testable import EdgeLogStorage
import Foundation
import Logging
import NIOCore
import Synchronization
import Testing

/// Topics, partitioning, retention and the disk budget.
@Suite struct LogManagerTests {
    static func manager(_ directory: String, _ adjust: (inout LogManager.Configuration) -> Void = { _ in }) throws -> LogManager {
        var configuration = LogManager.Configuration(dataDirectory: directory)
        configuration.retentionCheckIntervalMs = nil
        adjust(&configuration)
        return try LogManager.open(configuration, logger: Logger(label: "test")).0
    }

    static var smallSegments: LogConfig {
        var config = LogConfig()
        config.codec = .none
        config.segmentBytes = 4 * 1024
        return config
    }

    @Test func topicsSurviveAReopenWithTheirSettings() async throws {
        let directory = Fixtures.temporaryDirectory()
        defer { Fixtures.remove(directory) }
        let manager = try Self.manager(directory)
        var config = LogConfig()
        config.codec = .zstd
        config.retentionBytes = 12345
        try manager.createTopic("sensors.temperature", partitions: 3, config: config)
        try manager.createTopic("web-events", partitions: 1)
        #expect(throws: StorageError.topicAlreadyExists("web-events")) { try manager.createTopic("web-events", partitions: 2) }
        _ = try await manager.partition(topic: "sensors.temperature", 2).append(PartitionLogTests.records(0..<5))
        manager.close()

        let reopened = try Self.manager(directory)
        defer { reopened.close() }
        #expect(reopened.topicNames == ["sensors.temperature", "web-events"])
        let topic = try #require(reopened.topic("sensors.temperature"))
        #expect(topic.partitionCount == 3)
        #expect(topic.config.codec == .zstd && topic.config.retentionBytes == 12345)
        #expect(try reopened.partition(topic: "sensors.temperature", 2).logEndOffset == 5)
        #expect(throws: StorageError.unknownTopic("nope")) { try reopened.partition(topic: "nope", 0) }
        #expect(throws: StorageError.unknownPartition(topic: "web-events", partition: 1)) {
            try reopened.partition(topic: "web-events", 1)
        }
    }

    @Test func invalidTopicNamesAreRefusedWithTheReason() throws {
        let directory = Fixtures.temporaryDirectory()
        defer { Fixtures.remove(directory) }
        let manager = try Self.manager(directory)
        defer { manager.close() }
        for name in ["", ".", "..", "a/b", "spaces here", String(repeating: "x", count: 250), "ünï"] {
            #expect(throws: StorageError.self) { try manager.createTopic(name, partitions: 1) }
        }
        #expect(throws: StorageError.self) { try manager.createTopic("ok", partitions: 0) }
        #expect(manager.topicNames.isEmpty)
    }

    @Test func deletingATopicRemovesItsData() async throws {
        let directory = Fixtures.temporaryDirectory()
        defer { Fixtures.remove(directory) }
        let manager = try Self.manager(directory)
        defer { manager.close() }
        let topic = try manager.createTopic("gone", partitions: 2)
        _ = try await topic.partitions[0].append(PartitionLogTests.records(0..<5))
        try manager.deleteTopic("gone")
        #expect(manager.topic("gone") == nil)
        #expect(!FileSystem.exists(directory + "/gone-0"))
        #expect(!FileSystem.exists(directory + "/.topics/gone.json"))
        #expect(throws: StorageError.unknownTopic("gone")) { try manager.deleteTopic("gone") }
    }

    /// A replicator may save its checkpoint a moment after the topic is gone (CI once saw the
    /// delete fail with ENOTEMPTY when it did so between the listing and the rmdir): the late
    /// write fails, and brings back no directory.
    @Test func aCheckpointWrittenAfterTheDeleteFailsAndLeavesNoDirectory() async throws {
        let directory = Fixtures.temporaryDirectory()
        defer { Fixtures.remove(directory) }
        let manager = try Self.manager(directory)
        defer { manager.close() }
        let log = try manager.createTopic("gone", partitions: 1).partitions[0]
        _ = try await log.append(PartitionLogTests.records(0..<5))
        try log.writeConsumerCheckpoint(named: "upstream", offset: 3)
        try manager.deleteTopic("gone")
        #expect(throws: StorageError.self) { try log.writeConsumerCheckpoint(named: "upstream", offset: 5) }
        #expect(!FileSystem.exists(directory + "/gone-0"))
        #expect(try FileSystem.list(directory + "/.deleting").isEmpty)
    }

    /// A crash in the middle of a delete leaves partition directories in the trash: the next
    /// open removes them, and they make no topic.
    @Test func theNextOpenEmptiesTheTrashOfAnInterruptedDelete() async throws {
        let directory = Fixtures.temporaryDirectory()
        defer { Fixtures.remove(directory) }
        let manager = try Self.manager(directory)
        let log = try manager.createTopic("gone", partitions: 1).partitions[0]
        _ = try await log.append(PartitionLogTests.records(0..<50))
        manager.close()
        try FileSystem.createDirectory(directory + "/.deleting")
        try FileSystem.rename(directory + "/gone-0", to: directory + "/.deleting/gone-0-interrupted")
        try FileSystem.remove(directory + "/.topics/gone.json")

        let reopened = try Self.manager(directory)
        defer { reopened.close() }
        #expect(reopened.topicNames.isEmpty)
        #expect(try FileSystem.list(directory + "/.deleting").isEmpty)
    }

    @Test func retentionByBytesKeepsAtLeastTheLimitAndNeverTheActiveSegment() async throws {
        let directory = Fixtures.temporaryDirectory()
        defer { Fixtures.remove(directory) }
        let manager = try Self.manager(directory)
        defer { manager.close() }
        var config = Self.smallSegments
        config.retentionBytes = 10 * 1024
        config.retentionMs = nil
        let log = try manager.createTopic("r", partitions: 1, config: config).partitions[0]
        for start in stride(from: 0, to: 500, by: 10) { _ = try await log.append(PartitionLogTests.records(start..<(start + 10))) }
        let before = log.sizeBytes
        let freed = manager.applyRetention()
        #expect(freed > 0)
        #expect(log.sizeBytes < before && freed >= before - log.sizeBytes, "freed counts the index files too")
        #expect(log.sizeBytes >= 10 * 1024)
        #expect(log.logStartOffset == log.segments[0].baseOffset)
        #expect(log.logStartOffset > 0)
        #expect(throws: StorageError.self) { try log.read(from: 0, maxBytes: 100) }
        let records = try log.readRecords(from: log.logStartOffset, maxBytes: 1 << 24, compressor: BatchCompressor())
        #expect(records.first?.offset == log.logStartOffset && records.last?.offset == 499)
        // The log start survives a reopen through its checkpoint.
        let start = log.logStartOffset
        log.close()
        let (reopened, _) = try PartitionLog.open(topic: "r", partition: 0, directory: directory + "/r-0", config: config, logger: Logger(label: "t"))
        #expect(reopened.logStartOffset == start)
        reopened.close()
    }

    @Test func retentionByAgeAndTheFloor() async throws {
        let directory = Fixtures.temporaryDirectory()
        defer { Fixtures.remove(directory) }
        let manager = try Self.manager(directory)
        defer { manager.close() }
        var config = Self.smallSegments
        config.retentionMs = 60_000
        let log = try manager.createTopic("aged", partitions: 1, config: config).partitions[0]
        for start in stride(from: 0, to: 300, by: 10) { _ = try await log.append(PartitionLogTests.records(start..<(start + 10))) }
        let segments = log.segments
        #expect(segments.count > 3)
        // Nothing is old yet.
        #expect(manager.applyRetention() == 0)
        // An upstream still needs offsets from the third segment on.
        log.retentionFloor = segments[2].baseOffset
        let later = wallClockMs() + 3_600_000
        #expect(manager.applyRetention(nowMs: later) > 0)
        #expect(log.logStartOffset == segments[2].baseOffset)
        log.retentionFloor = nil
        _ = manager.applyRetention(nowMs: later)
        #expect(log.segments.count == 1, "the active segment always stays")
    }

    @Test func theDiskBudgetRejectsWithADistinctError() async throws {
        let directory = Fixtures.temporaryDirectory()
        defer { Fixtures.remove(directory) }
        let manager = try Self.manager(directory) {
            $0.diskBudgetBytes = 20 * 1024
            $0.overflowPolicy = .reject
        }
        defer { manager.close() }
        let log = try manager.createTopic("b", partitions: 1, config: Self.smallSegments).partitions[0]
        var rejected: StorageError? = nil
        for start in stride(from: 0, to: 1000, by: 10) {
            do { _ = try await log.append(PartitionLogTests.records(start..<(start + 10))) } catch let error as StorageError {
                rejected = error
                break
            }
        }
        guard case .diskBudgetExceeded(let used, let budget) = rejected else {
            Issue.record("expected diskBudgetExceeded, got \(String(describing: rejected))")
            return
        }
        #expect(budget == 20 * 1024 && used <= budget)
        #expect(log.fenceReason == nil)
        #expect(log.sizeBytes <= 20 * 1024)
    }

    @Test func dropOldestMakesRoomButNotBelowTheFloor() async throws {
        let directory = Fixtures.temporaryDirectory()
        defer { Fixtures.remove(directory) }
        let manager = try Self.manager(directory) {
            $0.diskBudgetBytes = 20 * 1024
            $0.overflowPolicy = .dropOldest
        }
        defer { manager.close() }
        let log = try manager.createTopic("d", partitions: 1, config: Self.smallSegments).partitions[0]
        for start in stride(from: 0, to: 1000, by: 10) { _ = try await log.append(PartitionLogTests.records(start..<(start + 10))) }
        #expect(log.logEndOffset == 1000)
        #expect(log.logStartOffset > 0)
        #expect((manager.budget?.usedBytes ?? 0) <= 20 * 1024)
        // With a floor at the current start nothing more may go: appends are rejected.
        log.retentionFloor = log.logStartOffset
        var rejected = false
        for start in stride(from: 1000, to: 2000, by: 10) {
            do { _ = try await log.append(PartitionLogTests.records(start..<(start + 10))) } catch StorageError.diskBudgetExceeded {
                rejected = true
                break
            }
        }
        #expect(rejected)
        #expect(log.logStartOffset == log.retentionFloor)
    }

    /// Every offset drop-oldest deletes is reported (the loss markers' source), in order and
    /// without gaps: the reports together cover exactly [0, log start).
    @Test func dropOldestReportsEveryDeletedOffset() async throws {
        let directory = Fixtures.temporaryDirectory()
        defer { Fixtures.remove(directory) }
        let manager = try Self.manager(directory) {
            $0.diskBudgetBytes = 20 * 1024
            $0.overflowPolicy = .dropOldest
        }
        defer { manager.close() }
        let reports = Mutex<[DeletedRecords]>([])
        manager.observeDeletions { deleted in reports.withLock { $0.append(deleted) } }
        let log = try manager.createTopic("d", partitions: 1, config: Self.smallSegments).partitions[0]
        for start in stride(from: 0, to: 1000, by: 10) { _ = try await log.append(PartitionLogTests.records(start..<(start + 10))) }
        let deleted = reports.withLock { $0 }
        #expect(log.logStartOffset > 0 && !deleted.isEmpty)
        var next: Int64 = 0
        for report in deleted {
            #expect(report.cause == .diskBudget && report.topic == "d" && report.partition == 0)
            #expect(report.firstOffset == next, "\(deleted)")
            #expect(report.fromTimestampMs > 0 && report.toTimestampMs >= report.fromTimestampMs)
            #expect(report.unreplicatedFrom == nil, "nothing replicates this partition")
            next = report.lastOffset + 1
        }
        #expect(next == log.logStartOffset)
    }

    /// Retention reports a deletion only when some upstream had not acknowledged what it deleted.
    @Test func retentionReportsOnlyWhatNoUpstreamHad() async throws {
        let directory = Fixtures.temporaryDirectory()
        defer { Fixtures.remove(directory) }
        let manager = try Self.manager(directory)
        defer { manager.close() }
        let reports = Mutex<[DeletedRecords]>([])
        manager.observeDeletions { deleted in reports.withLock { $0.append(deleted) } }
        var config = Self.smallSegments
        config.retentionMs = 60_000
        let log = try manager.createTopic("aged", partitions: 1, config: config).partitions[0]
        for start in stride(from: 0, to: 300, by: 10) { _ = try await log.append(PartitionLogTests.records(start..<(start + 10))) }
        let segments = log.segments
        #expect(segments.count > 4)
        // An upstream has everything below the third segment: deleting the first two loses nothing.
        log.replicatedUpTo = segments[2].baseOffset
        log.retentionFloor = segments[2].baseOffset
        #expect(manager.applyRetention(nowMs: wallClockMs() + 3_600_000) > 0)
        #expect(log.logStartOffset == segments[2].baseOffset)
        #expect(reports.withLock { $0 }.isEmpty)
        // A non-required upstream lags at the third segment; retention goes on to the active one.
        log.retentionFloor = nil
        #expect(manager.applyRetention(nowMs: wallClockMs() + 3_600_000) > 0)
        let deleted = reports.withLock { $0 }
        #expect(deleted.count == 1)
        #expect(deleted.first?.cause == .retentionUnreplicated)
        #expect(deleted.first?.firstOffset == segments[2].baseOffset && deleted.first?.lastOffset == log.logStartOffset - 1)
        #expect(deleted.first?.unreplicatedFrom == segments[2].baseOffset)
    }

    @Test func consumerCheckpointsAreDurableAndValidated() throws {
        let directory = Fixtures.temporaryDirectory()
        defer { Fixtures.remove(directory) }
        let manager = try Self.manager(directory)
        defer { manager.close() }
        let log = try manager.createTopic("c", partitions: 1).partitions[0]
        #expect(try log.consumerCheckpoint(named: "upstream-central") == nil)
        try log.writeConsumerCheckpoint(named: "upstream-central", offset: 42)
        #expect(try log.consumerCheckpoint(named: "upstream-central") == 42)
        #expect(throws: StorageError.self) { try log.writeConsumerCheckpoint(named: "../escape", offset: 1) }
        let path = try log.consumerCheckpointPath(named: "upstream-central")
        try "edgelog-checkpoint 1\noffset 43\ncrc32c 0\n".write(toFile: path, atomically: true, encoding: .utf8)
        #expect(throws: StorageError.self) { try log.consumerCheckpoint(named: "upstream-central") }
    }
}

@Suite struct PartitionerTests {
    // Kafka's UtilsTest.testMurmur2 vectors.
    @Test func murmur2MatchesKafka() {
        let cases: [(String, Int32)] = [
            ("21", -973_932_308),
            ("foobar", -790_332_482),
            ("a-little-bit-long-string", -985_981_536),
            ("a-little-bit-longer-string", -1_486_304_829),
            ("lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8", -58_897_971),
            ("abc", 479_470_107),
        ]
        for (key, expected) in cases {
            #expect(Murmur2.hash(Array(key.utf8)) == expected, "\(key)")
        }
    }

    @Test func keyedRecordsAlwaysLandInTheSamePartition() {
        let partitioner = Partitioner()
        let key = ByteBuffer(string: "device-17")
        let first = partitioner.partition(for: key, partitionCount: 12)
        for _ in 0..<10 { #expect(partitioner.partition(for: key, partitionCount: 12) == first) }
        #expect(first == (Murmur2.hash(Array("device-17".utf8)) & 0x7fff_ffff) % 12)
    }

    @Test func nullKeysAreStickyPerRequestOrRoundRobin() {
        let records = (0..<6).map { Record(timestamp: Int64($0), value: nil) }
        let sticky = Partitioner(nullKeyStrategy: .sticky)
        let one = sticky.partitions(for: records, partitionCount: 3)
        let two = sticky.partitions(for: records, partitionCount: 3)
        #expect(Set(one).count == 1 && Set(two).count == 1 && one[0] != two[0])
        let roundRobin = Partitioner(nullKeyStrategy: .roundRobin)
        #expect(roundRobin.partitions(for: records, partitionCount: 3) == [0, 1, 2, 0, 1, 2])
    }

    @Test func checkpointFilesCarryAVersionAndChecksum() throws {
        let text = String(buffer: Checkpoint(["offset": 7, "position": 99]).encoded())
        #expect(text.hasPrefix("edgelog-checkpoint 1\noffset 7\nposition 99\ncrc32c "))
        #expect(try Checkpoint.decode(text, path: "x") == Checkpoint(["offset": 7, "position": 99]))
        #expect(throws: StorageError.self) { try Checkpoint.decode(text.replacingOccurrences(of: "99", with: "98"), path: "x") }
        #expect(throws: StorageError.self) { try Checkpoint.decode(String(text.dropLast(4)), path: "x") }
        #expect(throws: StorageError.self) { try Checkpoint.decode("", path: "x") }
    }
}
