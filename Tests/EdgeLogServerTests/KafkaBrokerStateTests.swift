import EdgeLogKafka
@testable import EdgeLogServer
import EdgeLogStorage
import Foundation
import Logging
import NIOCore
import Testing
@testable import EdgeLogKafkaListener

/// The broker's in-memory state: idempotent producers rebuilt from the log after a restart,
/// and idle producers, unused member ids and empty groups forgotten.
@Suite struct KafkaBrokerStateTests {
    static let logger = Logger(label: "test")

    static func batch(producer: Int64, epoch: Int16, sequence: Int32, records: Int) throws -> ByteBuffer {
        var builder = RecordBatchBuilder(codec: .none)
        builder.producer = .init(id: producer, epoch: epoch, baseSequence: sequence)
        for index in 0..<records {
            builder.append(Record(timestamp: 1_700_000_000_000, value: ByteBuffer(string: "record \(index)")))
        }
        var bytes = ByteBuffer()
        _ = try builder.finish(baseOffset: 0, into: &bytes)
        return bytes
    }

    @Test func producerStateIsRebuiltFromTheLogAfterARestart() async throws {
        let directory = NSTemporaryDirectory() + "producer-restore-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let log = try PartitionLog.open(topic: "t", partition: 0, directory: directory, config: LogConfig(), logger: Self.logger).0
        // Producer 7 wrote sequences 0..<30 in six batches of 5 (epoch 2); producer 9 one batch
        // in epoch 0, then one in epoch 1; plain batches without a producer in between.
        var offsets: [Int64] = []
        for index in 0..<6 {
            offsets.append(try await log.append(batches: Self.batch(producer: 7, epoch: 2, sequence: Int32(index * 5), records: 5)).baseOffset)
            _ = try await log.append([Record(timestamp: 1_700_000_000_000, value: ByteBuffer(string: "plain"))])
        }
        _ = try await log.append(batches: Self.batch(producer: 9, epoch: 0, sequence: 0, records: 3))
        _ = try await log.append(batches: Self.batch(producer: 9, epoch: 1, sequence: 0, records: 2))

        // A broker that just started knows nothing until it reads the log.
        let table = ProducerStateTable()
        try table.restoreIfNeeded(topic: "t", partition: 0, from: log)
        let seven = ProducerStateTable.Key(topic: "t", partition: 0, producerId: 7)
        let nine = ProducerStateTable.Key(topic: "t", partition: 0, producerId: 9)
        // A retry of the last batch in flight at the crash is recognised, with its offset.
        #expect(table.check(seven, epoch: 2, firstSequence: 25, records: 5) == .duplicate(offset: offsets[5]))
        #expect(table.check(seven, epoch: 2, firstSequence: 5, records: 5) == .duplicate(offset: offsets[1]), "five batches are remembered")
        #expect(table.check(seven, epoch: 2, firstSequence: 0, records: 5) == .outOfOrder(expected: 30), "the sixth-newest is not")
        #expect(table.check(seven, epoch: 2, firstSequence: 31, records: 1) == .outOfOrder(expected: 30))
        #expect(table.check(seven, epoch: 1, firstSequence: 30, records: 1) == .staleEpoch(current: 2))
        #expect(table.check(seven, epoch: 2, firstSequence: 30, records: 1) == .append)
        #expect(table.check(nine, epoch: 0, firstSequence: 3, records: 1) == .staleEpoch(current: 1), "the newest epoch wins")
        #expect(table.check(nine, epoch: 1, firstSequence: 2, records: 1) == .append)
        // Once per start: a second restore does not overwrite what has happened since.
        try table.restoreIfNeeded(topic: "t", partition: 0, from: log)
        #expect(table.check(seven, epoch: 2, firstSequence: 31, records: 1) == .append)
        log.close()
    }

    @Test func aLateRestoreDoesNotRollBackProducersAcceptedMeanwhile() async throws {
        let directory = NSTemporaryDirectory() + "producer-race-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let log = try PartitionLog.open(topic: "t", partition: 0, directory: directory, config: LogConfig(), logger: Self.logger).0
        _ = try await log.append(batches: Self.batch(producer: 7, epoch: 0, sequence: 0, records: 10))
        let table = ProducerStateTable()
        let seven = ProducerStateTable.Key(topic: "t", partition: 0, producerId: 7)
        // As if another connection had restored the partition and accepted sequence 10 (and
        // this restore read the log before that batch was committed).
        #expect(table.check(seven, epoch: 0, firstSequence: 10, records: 1) == .append)
        try table.restoreIfNeeded(topic: "t", partition: 0, from: log)
        #expect(table.check(seven, epoch: 0, firstSequence: 10, records: 1) == .duplicate(offset: nil), "still known as a retry")
        #expect(table.check(seven, epoch: 0, firstSequence: 11, records: 1) == .append, "not rolled back to sequence 10")
        log.close()
    }

    @Test func idleProducersAreForgottenAfterADay() {
        let table = ProducerStateTable()
        let start = ContinuousClock.now
        let key = ProducerStateTable.Key(topic: "t", partition: 0, producerId: 1)
        #expect(table.check(key, epoch: 0, firstSequence: 0, records: 1, now: start) == .append)
        #expect(table.check(ProducerStateTable.Key(topic: "t", partition: 1, producerId: 2), epoch: 0, firstSequence: 0, records: 1, now: start + .seconds(20 * 3600)) == .append)
        #expect(table.expire(now: start + .seconds(23 * 3600)) == 0)
        #expect(table.expire(now: start + .seconds(25 * 3600)) == 1)
        #expect(table.count == 1)
        // A forgotten producer starts afresh at whatever sequence it sends.
        #expect(table.check(key, epoch: 0, firstSequence: 77, records: 1) == .append)
    }

    @Test func unusedMemberIdsAndEmptyGroupsAreForgotten() async throws {
        let directory = NSTemporaryDirectory() + "groups-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let coordinator = GroupCoordinator(store: GroupOffsetStore(dataDirectory: directory), logger: Self.logger)
        // KIP-394: a v4+ JoinGroup without a member id is told its id and must join again.
        var ids: [String] = []
        for _ in 0..<50 {
            let answer = await coordinator.join(
                JoinGroupRequest(groupId: "g", sessionTimeoutMs: 10_000, memberId: "", protocolType: "consumer",
                                 protocols: [.init(name: "range", metadata: ByteBuffer())]),
                version: 5, clientId: "c", host: "h")
            #expect(answer.errorCode == KafkaErrorCode.memberIdRequired.rawValue)
            ids.append(answer.memberId)
        }
        #expect(await coordinator.groupCount == 1)
        await coordinator.expireIdle(now: .now + .seconds(5))
        #expect(await coordinator.groupCount == 1, "ids stay usable for a session timeout")
        await coordinator.expireIdle(now: .now + .seconds(11))
        #expect(await coordinator.groupCount == 0, "never-used ids expire, and the empty group goes with them")
        let late = await coordinator.join(
            JoinGroupRequest(groupId: "g", sessionTimeoutMs: 10_000, memberId: ids[0], protocolType: "consumer",
                             protocols: [.init(name: "range", metadata: ByteBuffer())]),
            version: 5, clientId: "c", host: "h")
        #expect(late.errorCode == KafkaErrorCode.unknownMemberId.rawValue)
        #expect(await coordinator.describe("g").groupState == "Dead")
    }

    /// KIP-345: a static member's old id is fenced once the instance rejoins under a new one,
    /// and a static member can leave by its instance id.
    @Test func aStaticMembersOldIdIsFencedAndItLeavesByInstanceId() async throws {
        let directory = NSTemporaryDirectory() + "groups-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let coordinator = GroupCoordinator(
            store: GroupOffsetStore(dataDirectory: directory), initialRebalanceDelay: .zero, logger: Self.logger)
        func join(memberId: String = "") async -> JoinGroupResponse {
            await coordinator.join(
                JoinGroupRequest(groupId: "g", sessionTimeoutMs: 10_000, memberId: memberId, groupInstanceId: "edge-1",
                                 protocolType: "consumer", protocols: [.init(name: "range", metadata: ByteBuffer())]),
                version: 5, clientId: "c", host: "h")
        }
        let first = await join()
        #expect(first.errorCode == 0 && first.memberId.hasPrefix("edge-1-"), "no MEMBER_ID_REQUIRED for a static member")
        #expect(first.leader == first.memberId)
        let synced = await coordinator.sync(SyncGroupRequest(
            groupId: "g", generationId: first.generationId, memberId: first.memberId,
            assignments: [.init(memberId: first.memberId, assignment: ByteBuffer(string: "p0"))]))
        #expect(synced.assignment == ByteBuffer(string: "p0"))

        let again = await join()
        #expect(again.errorCode == 0 && again.memberId != first.memberId)
        #expect(again.generationId == first.generationId, "a stable group is not rebalanced")
        #expect(again.leader == first.memberId, "the leader named is the one before, so no assignment is computed")
        let kept = await coordinator.sync(SyncGroupRequest(groupId: "g", generationId: again.generationId, memberId: again.memberId))
        #expect(kept.assignment == ByteBuffer(string: "p0"), "the assignment is kept")

        let stale = await coordinator.heartbeat(HeartbeatRequest(
            groupId: "g", generationId: first.generationId, memberId: first.memberId, groupInstanceId: "edge-1"))
        #expect(stale.errorCode == KafkaErrorCode.fencedInstanceId.rawValue)
        #expect(await join(memberId: first.memberId).errorCode == KafkaErrorCode.fencedInstanceId.rawValue)
        #expect(await coordinator.leave(groupId: "g", members: [(first.memberId, "edge-1")]) == [.fencedInstanceId])
        #expect(await coordinator.leave(groupId: "g", members: [("", "edge-1")]) == [.none])
        #expect(await coordinator.describe("g").members.isEmpty)
    }
}
