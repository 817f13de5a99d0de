import EdgeLogKafka
import Foundation
import Logging
import NIOCore
import EdgeLogCore

/// Kafka's classic consumer-group protocol, coordinated by this node: members join (the
/// broker picks a leader and a protocol all members support), the leader computes the
/// assignment and hands it over in SyncGroup (the broker never assigns), heartbeats keep
/// members alive, and a member that leaves or stops heartbeating makes the others rejoin.
/// Committed offsets are durable (`GroupOffsetStore`); membership is not, as in Kafka, where
/// consumers rejoin after a coordinator restart.
package actor GroupCoordinator {
    enum State: String {
        case empty = "Empty"
        case preparingRebalance = "PreparingRebalance"
        case completingRebalance = "CompletingRebalance"
        case stable = "Stable"
    }

    struct Member {
        var id: String
        var clientId: String
        var host: String
        var sessionTimeout: Duration
        var rebalanceTimeout: Duration
        var protocols: [(name: String, metadata: ByteBuffer)]
        var assignment = ByteBuffer()
        var lastSeen: ContinuousClock.Instant
        var joinVersion: Int16 = 0
        /// KIP-345: the `group.instance.id` of a static member, nil for a dynamic one.
        var instanceId: String?
        var joining: CheckedContinuation<JoinGroupResponse, Never>?
        var syncing: CheckedContinuation<SyncGroupResponse, Never>?
    }

    struct Group {
        var state = State.empty
        var generation: Int32 = 0
        var protocolType: String?
        var protocolName: String?
        var leader: String?
        var members: [String: Member] = [:]
        /// Member ids handed out with MEMBER_ID_REQUIRED, not joined yet, and until when they
        /// may join with it (a session timeout, as in Kafka; then the id is forgotten).
        var pending: [String: ContinuousClock.Instant] = [:]
        /// Static members: group.instance.id to the member id it holds now.
        var staticMembers: [String: String] = [:]
        /// The rebalance completes when every member has rejoined (not before `joinOpensAt`,
        /// which gives a new group's other members time to arrive), or at `deadline`.
        var joinOpensAt: ContinuousClock.Instant = .now
        var deadline: ContinuousClock.Instant = .now
    }

    var groups: [String: Group] = [:]
    let store: GroupOffsetStore
    let initialRebalanceDelay: Duration
    let logger: Logger

    init(store: GroupOffsetStore, initialRebalanceDelay: Duration = .milliseconds(300), logger: Logger) {
        self.store = store
        self.initialRebalanceDelay = initialRebalanceDelay
        self.logger = logger
    }

    // MARK: Join and sync

    func join(_ request: JoinGroupRequest, version: Int16, clientId: String, host: String) async -> JoinGroupResponse {
        func fail(_ code: KafkaErrorCode, memberId: String = "") -> JoinGroupResponse {
            Self.joinFailure(code, memberId: memberId, version: version)
        }
        guard !request.groupId.isEmpty else { return fail(.invalidGroupId) }
        guard (1_000...3_600_000).contains(request.sessionTimeoutMs) else { return fail(.invalidSessionTimeout) }
        guard !request.protocols.isEmpty else { return fail(.inconsistentGroupProtocol) }
        var group = groups[request.groupId] ?? Group()
        if !group.members.isEmpty, let type = group.protocolType, type != request.protocolType {
            return fail(.inconsistentGroupProtocol)
        }
        var memberId = request.memberId
        let instanceId = version >= 5 ? request.groupInstanceId : nil
        if let instanceId {
            switch joinStatic(&group, instanceId: instanceId, request, version: version) {
            case .answer(let response):
                groups[request.groupId] = group
                return response
            case .proceed(let id):
                memberId = id
            }
        } else if memberId.isEmpty {
            memberId = "\(clientId.isEmpty ? "member" : clientId)-\(UUID().uuidString.lowercased())"
            if version >= 4 {
                // KIP-394: the member learns its id first and joins with it.
                group.pending[memberId] = .now + .milliseconds(Int(request.sessionTimeoutMs))
                groups[request.groupId] = group
                return fail(.memberIdRequired, memberId: memberId)
            }
        } else if group.members[memberId] == nil && group.pending[memberId] == nil {
            return fail(.unknownMemberId, memberId: memberId)
        }
        group.pending[memberId] = nil
        let now = ContinuousClock.now
        var member = group.members[memberId] ?? Member(
            id: memberId, clientId: clientId, host: host, sessionTimeout: .milliseconds(Int(request.sessionTimeoutMs)),
            rebalanceTimeout: .milliseconds(Int(max(request.rebalanceTimeoutMs, request.sessionTimeoutMs))),
            protocols: [], lastSeen: now, instanceId: instanceId)
        member.protocols = request.protocols.map { ($0.name, $0.metadata) }
        member.lastSeen = now
        member.joinVersion = version
        member.sessionTimeout = .milliseconds(Int(request.sessionTimeoutMs))
        member.rebalanceTimeout = .milliseconds(Int(max(request.rebalanceTimeoutMs, request.sessionTimeoutMs)))
        if let waiting = member.syncing {
            waiting.resume(returning: SyncGroupResponse(errorCode: KafkaErrorCode.rebalanceInProgress.rawValue))
            member.syncing = nil
        }
        if let waiting = member.joining {
            waiting.resume(returning: fail(.unknownMemberId, memberId: memberId))
            member.joining = nil
        }
        group.protocolType = request.protocolType
        let wasEmpty = group.members.isEmpty
        group.members[memberId] = member
        if group.state != .preparingRebalance {
            startRebalance(&group, now: now, fresh: wasEmpty)
        }
        groups[request.groupId] = group
        let groupId = request.groupId
        return await withCheckedContinuation { continuation in
            groups[groupId]?.members[memberId]?.joining = continuation
            completeJoinIfReady(groupId)
        }
    }

    private func startRebalance(_ group: inout Group, now: ContinuousClock.Instant, fresh: Bool) {
        group.state = .preparingRebalance
        group.joinOpensAt = fresh ? now + initialRebalanceDelay : now
        let longest = group.members.values.map(\.rebalanceTimeout).max() ?? .seconds(30)
        group.deadline = now + longest
        for (id, member) in group.members where member.syncing != nil {
            member.syncing?.resume(returning: SyncGroupResponse(errorCode: KafkaErrorCode.rebalanceInProgress.rawValue))
            group.members[id]?.syncing = nil
        }
    }

    /// Completes the join phase when everyone has rejoined (or the deadline passed): drops
    /// members that did not, bumps the generation, picks the protocol and the leader, and
    /// answers every waiting JoinGroup, the leader with the members' subscriptions.
    private func completeJoinIfReady(_ groupId: String, now: ContinuousClock.Instant = .now) {
        guard var group = groups[groupId], group.state == .preparingRebalance else { return }
        let everyoneRejoined = group.members.values.allSatisfy { $0.joining != nil }
        guard (everyoneRejoined && now >= group.joinOpensAt) || now >= group.deadline else { return }
        for (id, member) in group.members where member.joining == nil {
            group.members[id] = nil
            logger.info("group member dropped: it did not rejoin", metadata: ["edgelog.group": "\(groupId)", "edgelog.member": "\(id)"])
        }
        Self.forgetDepartedStaticMembers(&group)
        guard !group.members.isEmpty else {
            group.state = .empty
            group.leader = nil
            group.protocolName = nil
            group.generation += 1
            groups[groupId] = group
            return
        }
        group.generation += 1
        let ordered = group.members.values.sorted { $0.id < $1.id }
        if group.leader == nil || group.members[group.leader!] == nil { group.leader = ordered.first!.id }
        let leader = group.members[group.leader!]!
        // The first of the leader's protocols that every member supports.
        group.protocolName = leader.protocols.map(\.name).first { name in
            group.members.values.allSatisfy { $0.protocols.contains { $0.name == name } }
        } ?? leader.protocols.first?.name
        group.state = .completingRebalance
        let protocolName = group.protocolName
        for member in ordered {
            var response = JoinGroupResponse(
                generationId: group.generation, protocolType: group.protocolType,
                protocolName: protocolName ?? (member.joinVersion >= 7 ? nil : ""), leader: group.leader!, memberId: member.id)
            if member.id == group.leader {
                response.members = ordered.map { other in
                    .init(memberId: other.id, metadata: other.protocols.first { $0.name == protocolName }?.metadata ?? ByteBuffer())
                }
            }
            member.joining?.resume(returning: response)
            group.members[member.id]?.joining = nil
            group.members[member.id]?.lastSeen = now
            group.members[member.id]?.assignment = ByteBuffer()
        }
        groups[groupId] = group
        logger.info(
            "group rebalanced",
            metadata: ["edgelog.group": "\(groupId)", "edgelog.generation": "\(group.generation)", "edgelog.members": "\(ordered.count)"])
    }

    func sync(_ request: SyncGroupRequest) async -> SyncGroupResponse {
        func fail(_ code: KafkaErrorCode) -> SyncGroupResponse { SyncGroupResponse(errorCode: code.rawValue) }
        guard var group = groups[request.groupId], var member = group.members[request.memberId] else {
            return fail(Self.isFenced(groups[request.groupId], request.groupInstanceId, request.memberId) ? .fencedInstanceId : .unknownMemberId)
        }
        guard request.generationId == group.generation else { return fail(.illegalGeneration) }
        member.lastSeen = .now
        group.members[request.memberId] = member
        switch group.state {
        case .empty, .preparingRebalance:
            groups[request.groupId] = group
            return fail(.rebalanceInProgress)
        case .stable:
            groups[request.groupId] = group
            return SyncGroupResponse(protocolType: group.protocolType, protocolName: group.protocolName, assignment: member.assignment)
        case .completingRebalance:
            if request.memberId == group.leader {
                for assignment in request.assignments where group.members[assignment.memberId] != nil {
                    group.members[assignment.memberId]?.assignment = assignment.assignment
                }
                group.state = .stable
                for (id, other) in group.members where other.syncing != nil {
                    other.syncing?.resume(returning: SyncGroupResponse(
                        protocolType: group.protocolType, protocolName: group.protocolName, assignment: other.assignment))
                    group.members[id]?.syncing = nil
                }
                groups[request.groupId] = group
                return SyncGroupResponse(
                    protocolType: group.protocolType, protocolName: group.protocolName,
                    assignment: group.members[request.memberId]?.assignment ?? ByteBuffer())
            }
            groups[request.groupId] = group
            let groupId = request.groupId
            let memberId = request.memberId
            return await withCheckedContinuation { continuation in
                // A member that syncs again (a retry on a new connection) releases its old wait.
                groups[groupId]?.members[memberId]?.syncing?.resume(returning: fail(.rebalanceInProgress))
                groups[groupId]?.members[memberId]?.syncing = continuation
            }
        }
    }

    // MARK: Liveness

    func heartbeat(_ request: HeartbeatRequest) -> HeartbeatResponse {
        guard var group = groups[request.groupId], group.members[request.memberId] != nil else {
            let fenced = Self.isFenced(groups[request.groupId], request.groupInstanceId, request.memberId)
            return HeartbeatResponse(errorCode: (fenced ? KafkaErrorCode.fencedInstanceId : .unknownMemberId).rawValue)
        }
        // Kafka's order: the generation first; a rebalance being prepared sends members back
        // to JoinGroup; while the leader's assignment is awaited, heartbeats are fine.
        guard request.generationId == group.generation else {
            return HeartbeatResponse(errorCode: KafkaErrorCode.illegalGeneration.rawValue)
        }
        group.members[request.memberId]?.lastSeen = .now
        groups[request.groupId] = group
        if group.state == .preparingRebalance {
            return HeartbeatResponse(errorCode: KafkaErrorCode.rebalanceInProgress.rawValue)
        }
        return HeartbeatResponse()
    }

    /// Members leave by id, or a static member by its instance id (LeaveGroup v3+); a member
    /// id that no longer holds the instance is fenced.
    func leave(groupId: String, members: [(id: String, instanceId: String?)]) -> [KafkaErrorCode] {
        guard var group = groups[groupId] else { return members.map { _ in .unknownMemberId } }
        var codes: [KafkaErrorCode] = []
        for (requestedId, instanceId) in members {
            var id = requestedId
            if let instanceId, let holder = group.staticMembers[instanceId] {
                guard id.isEmpty || id == holder else {
                    codes.append(.fencedInstanceId)
                    continue
                }
                id = holder
            }
            guard let member = group.members.removeValue(forKey: id) else {
                codes.append(.unknownMemberId)
                continue
            }
            member.joining?.resume(returning: JoinGroupResponse(
                errorCode: KafkaErrorCode.unknownMemberId.rawValue, generationId: -1, protocolName: member.joinVersion >= 7 ? nil : ""))
            member.syncing?.resume(returning: SyncGroupResponse(errorCode: KafkaErrorCode.unknownMemberId.rawValue))
            codes.append(.none)
            logger.info("group member left", metadata: ["edgelog.group": "\(groupId)", "edgelog.member": "\(id)"])
        }
        Self.forgetDepartedStaticMembers(&group)
        rebalanceAfterDeparture(&group)
        groups[groupId] = group
        completeJoinIfReady(groupId)
        return codes
    }

    private func rebalanceAfterDeparture(_ group: inout Group) {
        if group.members.isEmpty {
            group.state = .empty
            group.leader = nil
        } else if group.state != .preparingRebalance {
            startRebalance(&group, now: .now, fresh: false)
        }
    }

    /// Runs until cancelled: expires members whose session timed out and completes joins
    /// whose wait is over.
    func runTimers() async {
        while !Task.isCancelled {
            try? await Task.sleep(for: .milliseconds(50))
            expireIdle()
        }
        shutDown()
    }

    /// One pass of the timers: members without heartbeats leave, member ids handed out but
    /// never used are forgotten, joins whose wait is over complete, and a group left with
    /// nobody is dropped from memory (its committed offsets stay on disk).
    func expireIdle(now: ContinuousClock.Instant = .now) {
        for groupId in Array(groups.keys) {
            guard var group = groups[groupId] else { continue }
            let unusedIds = group.pending.filter { $0.value < now }.map(\.key)
            if !unusedIds.isEmpty {
                for id in unusedIds { group.pending[id] = nil }
                groups[groupId] = group
            }
            if group.members.isEmpty && group.pending.isEmpty {
                groups[groupId] = nil
                continue
            }
            let expired = group.members.values.filter { $0.joining == nil && now - $0.lastSeen > $0.sessionTimeout }
            if !expired.isEmpty {
                for member in expired {
                    group.members[member.id] = nil
                    member.syncing?.resume(returning: SyncGroupResponse(errorCode: KafkaErrorCode.unknownMemberId.rawValue))
                    logger.info("group member expired (no heartbeat)", metadata: ["edgelog.group": "\(groupId)", "edgelog.member": "\(member.id)"])
                }
                Self.forgetDepartedStaticMembers(&group)
                rebalanceAfterDeparture(&group)
                groups[groupId] = group
            }
            completeJoinIfReady(groupId, now: now)
        }
    }

    /// How many groups are held in memory (tests).
    var groupCount: Int { groups.count }

    private func shutDown() {
        // Shutting down: nobody waits forever.
        for (groupId, group) in groups {
            for member in group.members.values {
                member.joining?.resume(returning: JoinGroupResponse(
                    errorCode: KafkaErrorCode.coordinatorNotAvailable.rawValue, generationId: -1,
                    protocolName: member.joinVersion >= 7 ? nil : ""))
                member.syncing?.resume(returning: SyncGroupResponse(errorCode: KafkaErrorCode.coordinatorNotAvailable.rawValue))
            }
            groups[groupId]?.members = [:]
        }
    }
}
