import EdgeLogKafka
import NIOCore
import EdgeLogCore

extension KafkaBroker {
    /// Consumer-group requests, answered by the group coordinator (which may hold JoinGroup
    /// and SyncGroup until the rebalance allows an answer).
    func groupRequest(_ api: KafkaAPIKey, header: KafkaRequestHeader, body: inout ByteBuffer, peer: String) throws(KafkaCodecError) -> Action {
        let version = header.apiVersion
        let correlationId = header.correlationId
        let groups = self.groups
        func later<Response: KafkaResponseMessage>(_ work: @escaping @Sendable () async -> Response) -> Action {
            .respond(Task { self.encode(await work(), correlationId: correlationId, version: version) })
        }
        switch api {
        case .joinGroup:
            let request = try JoinGroupRequest(from: &body, version: version)
            let clientId = header.clientId ?? ""
            return later { await groups.join(request, version: version, clientId: clientId, host: peer) }
        case .syncGroup:
            let request = try SyncGroupRequest(from: &body, version: version)
            return later { await groups.sync(request) }
        case .heartbeat:
            let request = try HeartbeatRequest(from: &body, version: version)
            return later { await groups.heartbeat(request) }
        case .leaveGroup:
            let request = try LeaveGroupRequest(from: &body, version: version)
            let members: [(id: String, instanceId: String?)] =
                version >= 3 ? request.members.map { ($0.memberId, $0.groupInstanceId) } : [(request.memberId, nil)]
            return later {
                let codes = await groups.leave(groupId: request.groupId, members: members)
                if version >= 3 {
                    return LeaveGroupResponse(members: zip(members, codes).map {
                        .init(memberId: $0.id, groupInstanceId: $0.instanceId, errorCode: $1.rawValue)
                    })
                }
                return LeaveGroupResponse(errorCode: codes.first?.rawValue ?? 0)
            }
        case .offsetCommit:
            let request = try OffsetCommitRequest(from: &body, version: version)
            return later { await groups.commit(request) }
        case .offsetFetch:
            let request = try OffsetFetchRequest(from: &body, version: version)
            let topics = request.topics.map { $0.map { (name: $0.name, partitions: $0.partitionIndexes) } }
            return later {
                let offsets = await groups.fetchOffsets(group: request.groupId, topics: topics)
                return OffsetFetchResponse(topics: offsets.map { topic, partitions in
                    .init(name: topic, partitions: partitions.map { partition, committed in
                        .init(partitionIndex: partition, committedOffset: committed?.offset ?? -1, committedLeaderEpoch: -1,
                              metadata: committed?.metadata ?? "")
                    })
                })
            }
        case .describeGroups:
            let request = try DescribeGroupsRequest(from: &body, version: version)
            return later {
                var described: [DescribeGroupsResponse.DescribedGroup] = []
                for group in request.groups { described.append(await groups.describe(group)) }
                return DescribeGroupsResponse(groups: described)
            }
        case .listGroups:
            let request = try ListGroupsRequest(from: &body, version: version)
            return later {
                let listed = await groups.list().filter { request.statesFilter.isEmpty || request.statesFilter.contains($0.state) }
                return ListGroupsResponse(groups: listed.map { .init(groupId: $0.id, protocolType: $0.protocolType, groupState: $0.state) })
            }
        default:
            return .close(reason: "\(api) is not a group request")
        }
    }
}
