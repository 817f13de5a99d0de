import EdgeLogKafka
import Foundation
import EdgeLogCore

/// KIP-345 static membership: a member with a `group.instance.id` keeps its place in the group
/// across restarts. librdkafka sends no LeaveGroup when such a member closes, so a restarted
/// process that joins again within its session timeout takes over the same member (under a
/// new member id) with the same assignment, and when the group is stable the others never
/// rebalance. The member id it held before is fenced: its requests get FENCED_INSTANCE_ID.
extension GroupCoordinator {
    enum StaticJoin {
        /// Answered without a rebalance (or refused).
        case answer(JoinGroupResponse)
        /// Go on with the ordinary join under this member id.
        case proceed(memberId: String)
    }

    static func joinFailure(_ code: KafkaErrorCode, memberId: String = "", version: Int16) -> JoinGroupResponse {
        // The protocol name may only be null from v7 on.
        JoinGroupResponse(errorCode: code.rawValue, generationId: -1, protocolName: version >= 7 ? nil : "", memberId: memberId)
    }

    func joinStatic(_ group: inout Group, instanceId: String, _ request: JoinGroupRequest, version: Int16) -> StaticJoin {
        let freshId = "\(instanceId)-\(UUID().uuidString.lowercased())"
        guard let holder = group.staticMembers[instanceId], group.members[holder] != nil else {
            // The instance's first join: it gets its member id at once (no MEMBER_ID_REQUIRED).
            guard request.memberId.isEmpty else { return .answer(Self.joinFailure(.unknownMemberId, memberId: request.memberId, version: version)) }
            group.staticMembers[instanceId] = freshId
            return .proceed(memberId: freshId)
        }
        guard request.memberId.isEmpty else {
            return request.memberId == holder
                ? .proceed(memberId: holder)
                : .answer(Self.joinFailure(.fencedInstanceId, memberId: request.memberId, version: version))
        }
        // A restart: the same member under a new id, its assignment kept, the old id fenced.
        var member = group.members.removeValue(forKey: holder)!
        member.joining?.resume(returning: Self.joinFailure(.fencedInstanceId, memberId: holder, version: member.joinVersion))
        member.joining = nil
        member.syncing?.resume(returning: SyncGroupResponse(errorCode: KafkaErrorCode.fencedInstanceId.rawValue))
        member.syncing = nil
        member.id = freshId
        member.protocols = request.protocols.map { ($0.name, $0.metadata) }
        member.sessionTimeout = .milliseconds(Int(request.sessionTimeoutMs))
        member.rebalanceTimeout = .milliseconds(Int(max(request.rebalanceTimeoutMs, request.sessionTimeoutMs)))
        member.joinVersion = version
        member.lastSeen = .now
        group.members[freshId] = member
        group.staticMembers[instanceId] = freshId
        let leaderBefore = group.leader
        if group.leader == holder { group.leader = freshId }
        logger.info(
            "static group member rejoined", metadata: ["edgelog.instance": "\(instanceId)", "edgelog.member": "\(freshId)"])
        guard group.state == .stable, let selected = group.protocolName, member.protocols.contains(where: { $0.name == selected }) else {
            return .proceed(memberId: freshId)
        }
        // As Kafka does: the leader named is the one before, so a returning leader does not
        // compute an assignment that a stable group would never hand out; SyncGroup returns
        // the member's kept assignment.
        return .answer(JoinGroupResponse(
            generationId: group.generation, protocolType: group.protocolType, protocolName: selected,
            leader: leaderBefore ?? freshId, memberId: freshId))
    }

    /// Whether a request names a static instance that another member id now holds.
    static func isFenced(_ group: Group?, _ instanceId: String?, _ memberId: String) -> Bool {
        guard let instanceId, let holder = group?.staticMembers[instanceId] else { return false }
        return holder != memberId
    }

    static func forgetDepartedStaticMembers(_ group: inout Group) {
        group.staticMembers = group.staticMembers.filter { group.members[$0.value] != nil }
    }
}
