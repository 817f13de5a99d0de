@testable import EdgeLogStorage
import Foundation
import Logging
import NIOCore
import Testing

/// I/O failures while appending: a failed fsync, a full file system.
@Suite(.serialized) struct FaultTests {
    @Test func afterAFailedFsyncThePartitionRefusesAppendsUntilReopened() async throws {
        let directory = Fixtures.temporaryDirectory()
        defer { Fixtures.remove(directory) }
        var config = LogConfig()
        config.flush = .always
        let (log, _) = try PartitionLogTests.open(directory, config: config)
        _ = try await log.append(PartitionLogTests.records(0..<10))
        FaultInjection.inject(.init(pathPrefix: directory, operation: .sync, errno: EIO))
        do {
            _ = try await log.append(PartitionLogTests.records(10..<20))
            Issue.record("an append whose fsync failed was acknowledged")
        } catch let error as StorageError {
            guard case .partitionFenced(let partition, let reason) = error else {
                Issue.record("unexpected \(error)")
                return
            }
            #expect(partition == "t-0")
            #expect(reason.contains("fdatasync"))
        }
        FaultInjection.clear(pathPrefix: directory)
        // The disk works again, but the partition cannot know what the failed fsync lost.
        await #expect(throws: StorageError.self) { try await log.append(PartitionLogTests.records(20..<30)) }
        #expect(log.fenceReason != nil)
        #expect(log.logEndOffset == 10, "readers never see the unacknowledged group")
        log.close()
        // A reopen recovers whatever reached the disk and accepts appends again.
        let (reopened, report) = try PartitionLogTests.open(directory, config: config)
        #expect(report.logEndOffset >= 10)
        let next = try await reopened.append(PartitionLogTests.records(0..<1))
        #expect(next.baseOffset == report.logEndOffset)
        reopened.close()
    }

    /// Issue 13: a fenced partition recovers in place once the disk works (the daemon tries
    /// every few seconds), without a restart; while the disk still fails it stays fenced.
    @Test func aFencedPartitionRecoversInPlaceOnceTheDiskWorks() async throws {
        let directory = Fixtures.temporaryDirectory()
        defer { Fixtures.remove(directory) }
        var config = LogConfig()
        config.flush = .always
        let (log, _) = try PartitionLogTests.open(directory, config: config)
        defer { log.close() }
        _ = try await log.append(PartitionLogTests.records(0..<10))
        #expect(try log.recoverFromFence() == nil, "not fenced: nothing to do")
        FaultInjection.inject(.init(pathPrefix: directory, operation: .sync, errno: EIO))
        await #expect(throws: StorageError.self) { try await log.append(PartitionLogTests.records(10..<20)) }
        #expect(log.fenceReason != nil)
        // Recovery syncs what it keeps: while fsync still fails the partition stays fenced.
        #expect(throws: StorageError.self) { try log.recoverFromFence() }
        #expect(log.fenceReason != nil)
        FaultInjection.clear(pathPrefix: directory)
        let report = try #require(try log.recoverFromFence())
        #expect(log.fenceReason == nil && report.logEndOffset >= 10)
        let next = try await log.append(PartitionLogTests.records(0..<1))
        #expect(next.baseOffset == report.logEndOffset)
        let values = try log.readRecords(from: 0, maxRecords: 10, compressor: BatchCompressor()).map(\.offset)
        #expect(values == Array(0..<10), "every acknowledged record is still there")
    }

    @Test func aFailedWriteIsReportedAndFencesThePartition() async throws {
        let directory = Fixtures.temporaryDirectory()
        defer { Fixtures.remove(directory) }
        let (log, _) = try PartitionLogTests.open(directory)
        FaultInjection.inject(.init(pathPrefix: directory, operation: .write, errno: EIO))
        await #expect(throws: StorageError.self) { try await log.append(PartitionLogTests.records(0..<10)) }
        FaultInjection.clear(pathPrefix: directory)
        #expect(log.fenceReason?.contains("Input/output error") == true)
        log.close()
    }

    /// A real full file system: a 1 MiB tmpfs. Needs root (CI and these machines have it).
    @Test func aFullDiskGivesADistinctErrorAndLosesNothingAcknowledged() async throws {
        let mountPoint = Fixtures.temporaryDirectory()
        defer { Fixtures.remove(mountPoint) }
        guard Self.run("/bin/mount", ["-t", "tmpfs", "-o", "size=1m", "tmpfs", mountPoint]) == 0 else {
            Issue.record("cannot mount a tmpfs (needs root)")
            return
        }
        defer { _ = Self.run("/bin/umount", ["-l", mountPoint]) }
        var config = LogConfig()
        config.codec = .none
        config.segmentBytes = 64 * 1024 * 1024
        let (log, _) = try PartitionLogTests.open(mountPoint, config: config)
        var acknowledged: Int64 = 0
        var sawDiskFull = false
        for round in 0..<200 {
            do {
                let result = try await log.append(PartitionLogTests.records((round * 100)..<(round * 100 + 100)))
                acknowledged = result.lastOffset + 1
            } catch let error as StorageError {
                guard case .diskFull(let path) = error else {
                    Issue.record("unexpected \(error)")
                    break
                }
                #expect(path.hasPrefix(mountPoint))
                sawDiskFull = true
                break
            }
        }
        #expect(sawDiskFull)
        #expect(acknowledged > 0)
        #expect(log.fenceReason == nil, "a full disk is not a reason to distrust what was written")
        #expect(log.logEndOffset == acknowledged)
        log.close()
        let (reopened, report) = try PartitionLogTests.open(mountPoint, config: config)
        #expect(report.logEndOffset == acknowledged)
        #expect(try RecoveryTests.allOffsets(reopened).count == Int(acknowledged))
        reopened.close()
    }

    @Test func intervalFlushAcknowledgesBeforeFsyncAndSyncsLater() async throws {
        let directory = Fixtures.temporaryDirectory()
        defer { Fixtures.remove(directory) }
        var config = LogConfig()
        config.flush = .interval(milliseconds: 50)
        config.checkpointIntervalMs = 10
        let (log, _) = try PartitionLogTests.open(directory, config: config)
        // While fsync fails, interval appends are still acknowledged (written to the OS)…
        FaultInjection.inject(.init(pathPrefix: directory, operation: .sync, errno: EIO))
        let result = try await log.append(PartitionLogTests.records(0..<10))
        #expect(result.lastOffset == 9)
        // …and the periodic flush that fails fences the partition.
        let deadline = Date().addingTimeInterval(10)
        while log.fenceReason == nil && Date() < deadline { try await Task.sleep(for: .milliseconds(10)) }
        FaultInjection.clear(pathPrefix: directory)
        #expect(log.fenceReason != nil)
        log.close()
    }

    static func run(_ executable: String, _ arguments: [String]) -> Int32 {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        do { try process.run() } catch { return -1 }
        process.waitUntilExit()
        return process.terminationStatus
    }
}
