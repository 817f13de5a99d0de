import EdgeLogKafka
import Foundation
import Logging
import NIOCore
import EdgeLogCore

/// Committed offsets and the tooling views (describe, list) of the groups.
extension GroupCoordinator {
    // MARK: Offsets

    func commit(_ request: OffsetCommitRequest) async -> OffsetCommitResponse {
        var code = KafkaErrorCode.none
        if request.generationIdOrMemberEpoch >= 0 || !request.memberId.isEmpty {
            if let group = groups[request.groupId], group.members[request.memberId] != nil {
                if group.state == .preparingRebalance { code = .rebalanceInProgress }
                else if group.generation != request.generationIdOrMemberEpoch { code = .illegalGeneration }
            } else {
                code = Self.isFenced(groups[request.groupId], request.groupInstanceId, request.memberId) ? .fencedInstanceId : .unknownMemberId
            }
        }
        if code == .none {
            let updates = request.topics.flatMap { topic in
                topic.partitions.map {
                    (topic.name, $0.partitionIndex, GroupOffsetStore.Committed(offset: $0.committedOffset, metadata: $0.committedMetadata))
                }
            }
            do { try await store.commit(request.groupId, updates) } catch {
                logger.error("cannot persist committed offsets: \(error)", metadata: ["edgelog.group": "\(request.groupId)"])
                code = .kafkaStorageError
            }
        }
        return OffsetCommitResponse(topics: request.topics.map { topic in
            .init(name: topic.name, partitions: topic.partitions.map { .init(partitionIndex: $0.partitionIndex, errorCode: code.rawValue) })
        })
    }

    func fetchOffsets(group: String, topics: [(name: String, partitions: [Int32])]?) -> [(String, [(Int32, GroupOffsetStore.Committed?)])] {
        let committed = store.offsets(group)
        if let topics {
            return topics.map { topic in (topic.name, topic.partitions.map { ($0, committed[topic.name]?[$0]) }) }
        }
        return committed.sorted { $0.key < $1.key }.map { topic, partitions in
            (topic, partitions.sorted { $0.key < $1.key }.map { ($0.key, $0.value) })
        }
    }

    // MARK: Tooling

    func describe(_ groupId: String) -> DescribeGroupsResponse.DescribedGroup {
        guard let group = groups[groupId] else {
            // A group with committed offsets but nobody in it is Empty, as in Kafka.
            let state = store.offsets(groupId).isEmpty ? "Dead" : State.empty.rawValue
            return .init(groupId: groupId, groupState: state, protocolType: state == "Dead" ? "" : "consumer", protocolData: "")
        }
        return .init(
            groupId: groupId, groupState: group.state.rawValue, protocolType: group.protocolType ?? "",
            protocolData: group.protocolName ?? "",
            members: group.members.values.sorted { $0.id < $1.id }.map { member in
                .init(memberId: member.id, groupInstanceId: member.instanceId, clientId: member.clientId, clientHost: member.host,
                      memberMetadata: member.protocols.first { $0.name == group.protocolName }?.metadata ?? ByteBuffer(),
                      memberAssignment: member.assignment)
            })
    }

    func list() -> [(id: String, protocolType: String, state: String)] {
        var listed = groups.map { ($0.key, $0.value.protocolType ?? "", $0.value.state.rawValue) }
        for stored in store.groupsOnDisk() where groups[stored] == nil { listed.append((stored, "consumer", State.empty.rawValue)) }
        return listed.sorted { $0.0 < $1.0 }
    }
}
