public import NIOCore
public import NIOPosix

/// What the client knows of one upstream cluster: its brokers, each partition's leader, and
/// one pooled connection per broker. Requests that need "any broker" (metadata, topic
/// creation, producer ids) go to the first broker that answers, trying the known brokers
/// and then every bootstrap address in turn, so a dead bootstrap broker is skipped.
public actor KafkaCluster {
    public struct PartitionInfo: Sendable, Equatable {
        public var leader: Int32
        public var leaderEpoch: Int32
        public var error: KafkaErrorCode
    }

    public struct TopicInfo: Sendable, Equatable {
        public var error: KafkaErrorCode
        public var partitions: [Int32: PartitionInfo]
    }

    public let bootstrap: [KafkaBrokerAddress]
    public let configuration: KafkaClientConfiguration
    private let group: any EventLoopGroup

    private var brokers: [Int32: KafkaBrokerAddress] = [:]
    private var connections: [KafkaBrokerAddress: KafkaConnection] = [:]
    private var connecting: [KafkaBrokerAddress: Task<KafkaConnection, any Error>] = [:]
    private var topics: [String: TopicInfo] = [:]
    /// Where the next "any broker" request starts, so failures rotate through the list.
    private var rotation = 0
    private var closed = false

    public init(
        bootstrap: [KafkaBrokerAddress], configuration: KafkaClientConfiguration,
        group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton
    ) {
        self.bootstrap = bootstrap
        self.configuration = configuration
        self.group = group
    }

    // MARK: Connections

    /// A live connection to `address`, reusing the pooled one. Concurrent callers share one
    /// connect attempt.
    public func connection(to address: KafkaBrokerAddress) async throws(KafkaClientError) -> KafkaConnection {
        if let existing = connections[address], existing.isActive { return existing }
        connections[address] = nil
        let attempt: Task<KafkaConnection, any Error>
        if let pending = connecting[address] {
            attempt = pending
        } else {
            let configuration = self.configuration
            let group = self.group
            attempt = Task { try await KafkaConnection.connect(to: address, configuration: configuration, group: group) }
            connecting[address] = attempt
        }
        do {
            let connection = try await attempt.value
            connecting[address] = nil
            guard !closed else {
                // Connected after close(): nobody will use or close it otherwise.
                connection.close()
                throw KafkaClientError.connectionClosed(broker: address.description)
            }
            if let newer = connections[address], newer !== connection, newer.isActive {
                connection.close()
                return newer
            }
            connections[address] = connection
            return connection
        } catch {
            connecting[address] = nil
            throw (error as? KafkaClientError) ?? .connectFailed(broker: address.description, reason: "\(error)")
        }
    }

    public func connection(toNode node: Int32) async throws(KafkaClientError) -> KafkaConnection {
        guard let address = brokers[node] else {
            throw .brokerError(broker: "node \(node)", api: "Metadata", code: .leaderNotAvailable, message: "unknown broker id")
        }
        return try await connection(to: address)
    }

    /// Drops a connection that failed, so the next request reconnects.
    public func discard(_ connection: KafkaConnection) {
        connection.close()
        if connections[connection.broker] === connection { connections[connection.broker] = nil }
    }

    public func close() {
        closed = true
        for connection in connections.values { connection.close() }
        connections = [:]
        for attempt in connecting.values { attempt.cancel() }
        connecting = [:]
    }

    /// Runs `body` on the first broker that can be reached, known brokers first, then the
    /// bootstrap list; a broker whose connection fails mid-request is dropped and the next
    /// one tried.
    public func withAnyBroker<T: Sendable>(
        _ body: @Sendable (KafkaConnection) async throws(KafkaClientError) -> T
    ) async throws(KafkaClientError) -> T {
        var candidates = bootstrap
        for address in brokers.values.sorted(by: { $0.description < $1.description }) where !candidates.contains(address) {
            candidates.append(address)
        }
        guard !candidates.isEmpty else { throw .noBrokerReachable(tried: [], lastError: "no bootstrap brokers configured") }
        var lastError = "none"
        let start = rotation % candidates.count
        for step in 0..<candidates.count {
            let address = candidates[(start + step) % candidates.count]
            let connection: KafkaConnection
            do throws(KafkaClientError) {
                connection = try await self.connection(to: address)
            } catch {
                lastError = error.description
                rotation = (start + step + 1) % candidates.count
                continue
            }
            do throws(KafkaClientError) {
                return try await body(connection)
            } catch {
                guard error.isConnectionLevel else { throw error }
                discard(connection)
                lastError = error.description
                rotation = (start + step + 1) % candidates.count
            }
        }
        throw .noBrokerReachable(tried: candidates.map(\.description), lastError: lastError)
    }

    // MARK: Metadata

    /// Asks for `topicNames` and records brokers, leaders and partition counts.
    @discardableResult
    public func refreshMetadata(topics topicNames: [String]) async throws(KafkaClientError) -> [String: TopicInfo] {
        let request = MetadataRequest(
            topics: topicNames.map { MetadataRequest.MetadataRequestTopic(name: $0) }, allowAutoTopicCreation: false)
        let response = try await withAnyBroker { connection throws(KafkaClientError) in
            try await connection.send(request)
        }
        for broker in response.brokers {
            brokers[broker.nodeId] = KafkaBrokerAddress(host: broker.host, port: Int(broker.port))
        }
        var result: [String: TopicInfo] = [:]
        for topic in response.topics {
            guard let name = topic.name else { continue }
            var partitions: [Int32: PartitionInfo] = [:]
            for partition in topic.partitions {
                partitions[partition.partitionIndex] = PartitionInfo(
                    leader: partition.leaderId, leaderEpoch: partition.leaderEpoch, error: KafkaErrorCode(partition.errorCode))
            }
            let info = TopicInfo(error: KafkaErrorCode(topic.errorCode), partitions: partitions)
            topics[name] = info
            result[name] = info
        }
        return result
    }

    /// The leader's connection for a partition, refreshing metadata when the leader is not
    /// known (or `refresh` is set after a leadership error).
    public func leaderConnection(
        topic: String, partition: Int32, refresh: Bool = false
    ) async throws(KafkaClientError) -> KafkaConnection {
        if refresh || topics[topic]?.partitions[partition] == nil {
            try await refreshMetadata(topics: [topic])
        }
        guard let info = topics[topic] else {
            throw .brokerError(broker: "cluster", api: "Metadata", code: .unknownTopicOrPartition, message: "topic '\(topic)' not in metadata")
        }
        guard info.error == .none else {
            throw .brokerError(broker: "cluster", api: "Metadata", code: info.error, message: "topic '\(topic)'")
        }
        guard let leader = info.partitions[partition], leader.error == .none || leader.error == .replicaNotAvailable,
            leader.leader >= 0
        else {
            let code = info.partitions[partition]?.error ?? .unknownTopicOrPartition
            throw .brokerError(broker: "cluster", api: "Metadata", code: code == .none ? .leaderNotAvailable : code,
                message: "partition \(topic)-\(partition) has no leader")
        }
        return try await connection(toNode: leader.leader)
    }

    // MARK: Admin

    /// Creates `name` with `partitions` partitions; an existing topic is fine.
    public func createTopic(_ name: String, partitions: Int32, timeout: Duration = .seconds(30)) async throws(KafkaClientError) {
        let response = try await withAnyBroker { connection throws(KafkaClientError) in
            let version = try connection.negotiatedVersion(of: CreateTopicsRequest.self)
            // Replication factor -1 (the broker's default) needs v4; older brokers get 1.
            let topic = CreateTopicsRequest.CreatableTopic(
                name: name, numPartitions: partitions, replicationFactor: version >= 4 ? -1 : 1)
            let request = CreateTopicsRequest(topics: [topic], timeoutMs: Int32(timeout.components.seconds * 1000))
            return try await connection.send(request, version: version)
        }
        for result in response.topics where result.name == name {
            let code = KafkaErrorCode(result.errorCode)
            guard code == .none || code == .topicAlreadyExists else {
                throw .brokerError(broker: "cluster", api: "CreateTopics", code: code, message: result.errorMessage)
            }
        }
    }

    /// A fresh idempotent producer id and epoch.
    public func initProducerId() async throws(KafkaClientError) -> (id: Int64, epoch: Int16) {
        let response = try await withAnyBroker { connection throws(KafkaClientError) in
            // The highest common version (Tansu 0.6 answers only v3 and later properly).
            try await connection.send(InitProducerIdRequest(transactionalId: nil, transactionTimeoutMs: -1))
        }
        guard response.errorCode == 0, response.producerId >= 0 else {
            throw .brokerError(broker: "cluster", api: "InitProducerId", code: KafkaErrorCode(response.errorCode), message: nil)
        }
        return (response.producerId, response.producerEpoch)
    }
}
