import EdgeLogKafka
import EdgeLogStorage
import Foundation
import EdgeLogCore

// Metadata, topic administration, topic configs and producer ids.
extension KafkaBroker {
    /// Topics by name, or by topic id from v10 on; each answered with its id.
    func metadata(_ request: MetadataRequest, version: Int16) -> MetadataResponse {
        let requested: [(name: String?, id: KafkaUUID)] = request.topics.map { $0.map { ($0.name, $0.topicId) } }
            ?? manager.topicNames.map { ($0, KafkaUUID.zero) }
        var topics: [MetadataResponse.MetadataResponseTopic] = []
        for (requestedName, requestedId) in requested {
            guard let name = requestedName ?? manager.topic(id: UUID(kafka: requestedId))?.name else {
                // The name may only be null from v12 on.
                topics.append(.init(errorCode: KafkaErrorCode.unknownTopicId.rawValue, name: version >= 12 ? nil : "", topicId: requestedId))
                continue
            }
            var topic = manager.topic(name)
            if topic == nil, request.allowAutoTopicCreation, settings.autoCreateTopics {
                topic = try? manager.createTopic(name, partitions: defaultPartitions)
            }
            guard let topic else {
                let invalid = (try? Topic.validate(name: name)) == nil
                topics.append(.init(
                    errorCode: (invalid ? KafkaErrorCode.invalidTopicException : .unknownTopicOrPartition).rawValue, name: name))
                continue
            }
            topics.append(.init(name: name, topicId: KafkaUUID(topic.id), partitions: topic.partitions.map {
                .init(partitionIndex: $0.partition, leaderId: Self.nodeId, leaderEpoch: Self.leaderEpoch,
                      replicaNodes: [Self.nodeId], isrNodes: [Self.nodeId], offlineReplicas: [])
            }))
        }
        return MetadataResponse(
            brokers: [.init(nodeId: Self.nodeId, host: advertised.host, port: Int32(advertised.port))],
            clusterId: clusterId, controllerId: Self.nodeId, topics: topics)
    }

    func createTopics(_ request: CreateTopicsRequest) -> CreateTopicsResponse {
        CreateTopicsResponse(topics: request.topics.map { topic in
            var result = CreateTopicsResponse.CreatableTopicResult(name: topic.name)
            func fail(_ code: KafkaErrorCode, _ message: String) -> CreateTopicsResponse.CreatableTopicResult {
                result.errorCode = code.rawValue
                result.errorMessage = message
                return result
            }
            let partitions = topic.numPartitions == -1 ? defaultPartitions : topic.numPartitions
            guard partitions >= 1, partitions <= 10_000 else {
                return fail(.invalidPartitions, "partitions must be 1 to 10000, not \(topic.numPartitions)")
            }
            guard topic.replicationFactor == -1 || topic.replicationFactor == 1 else {
                return fail(.invalidReplicationFactor, "edgelog is a single node: the replication factor is 1")
            }
            guard topic.assignments.isEmpty else { return fail(.invalidRequest, "manual replica assignments are not supported") }
            do { try Topic.validate(name: topic.name) } catch { return fail(.invalidTopicException, "\(error)") }
            guard manager.topic(topic.name) == nil else {
                return fail(.topicAlreadyExists, "topic '\(topic.name)' already exists")
            }
            if !request.validateOnly {
                do { result.topicId = KafkaUUID(try manager.createTopic(topic.name, partitions: partitions).id) } catch {
                    return fail(.unknownServerError, "\(error)")
                }
            }
            result.numPartitions = partitions
            result.replicationFactor = 1
            return result
        })
    }

    func deleteTopics(_ request: DeleteTopicsRequest, version: Int16) -> DeleteTopicsResponse {
        let names = version >= 6 ? request.topics.compactMap(\.name) : request.topicNames
        return DeleteTopicsResponse(responses: names.map { name in
            guard manager.topic(name) != nil else {
                return .init(name: name, errorCode: KafkaErrorCode.unknownTopicOrPartition.rawValue, errorMessage: "no topic '\(name)'")
            }
            do {
                try manager.deleteTopic(name)
                producers.forget(topic: name)
                return .init(name: name)
            } catch {
                return .init(name: name, errorCode: KafkaErrorCode.unknownServerError.rawValue, errorMessage: "\(error)")
            }
        })
    }

    /// Topic settings under Kafka's names, so `kafka-configs --describe` and admin clients
    /// read them; broker resources answer with an empty list.
    func describeConfigs(_ request: DescribeConfigsRequest) -> DescribeConfigsResponse {
        DescribeConfigsResponse(results: request.resources.map { resource in
            var result = DescribeConfigsResponse.DescribeConfigsResult(
                resourceType: resource.resourceType, resourceName: resource.resourceName)
            switch resource.resourceType {
            case 2:  // topic
                guard let topic = manager.topic(resource.resourceName) else {
                    result.errorCode = KafkaErrorCode.unknownTopicOrPartition.rawValue
                    result.errorMessage = "no topic '\(resource.resourceName)'"
                    return result
                }
                let config = topic.config
                var entries: [(String, String)] = [
                    ("cleanup.policy", "delete"),
                    ("compression.type", config.codec.kafkaName),
                    ("retention.ms", "\(config.retentionMs ?? -1)"),
                    ("retention.bytes", "\(config.retentionBytes ?? -1)"),
                    ("segment.bytes", "\(config.segmentBytes)"),
                    ("segment.ms", "\(config.segmentMs)"),
                    ("max.message.bytes", "\(config.maxBatchBytes)"),
                    ("message.timestamp.type", "CreateTime"),
                ]
                if let keys = resource.configurationKeys { entries = entries.filter { keys.contains($0.0) } }
                result.configs = entries.map {
                    .init(name: $0.0, value: $0.1, readOnly: true, isDefault: false, configSource: 1, isSensitive: false)
                }
            case 4:  // broker
                break
            default:
                result.errorCode = KafkaErrorCode.invalidRequest.rawValue
                result.errorMessage = "resource type \(resource.resourceType) is not supported"
            }
            return result
        })
    }

    /// This node coordinates every group; there are no transactions to coordinate.
    func findCoordinator(_ request: FindCoordinatorRequest, version: Int16) -> FindCoordinatorResponse {
        let supported = request.keyType == 0
        let code = supported ? KafkaErrorCode.none : .coordinatorNotAvailable
        let message = supported ? nil : "transactions are not supported"
        if version >= 4 {
            return FindCoordinatorResponse(coordinators: request.coordinatorKeys.map {
                .init(key: $0, nodeId: supported ? Self.nodeId : -1, host: supported ? advertised.host : "",
                      port: supported ? Int32(advertised.port) : -1, errorCode: code.rawValue, errorMessage: message)
            })
        }
        return FindCoordinatorResponse(
            errorCode: code.rawValue, errorMessage: message, nodeId: supported ? Self.nodeId : -1,
            host: supported ? advertised.host : "", port: supported ? Int32(advertised.port) : -1)
    }

    func initProducerId(_ request: InitProducerIdRequest) -> InitProducerIdResponse {
        guard request.transactionalId == nil else {
            // Transactions are not supported; idempotent producers are.
            return InitProducerIdResponse(errorCode: KafkaErrorCode.clusterAuthorizationFailed.rawValue, producerId: -1, producerEpoch: -1)
        }
        return InitProducerIdResponse(producerId: newProducerId(), producerEpoch: 0)
    }
}

extension CompressionCodec {
    /// Kafka's name for the codec, as in `compression.type`.
    var kafkaName: String {
        switch self {
        case .none: "uncompressed"
        case .gzip: "gzip"
        case .snappy: "snappy"
        case .lz4: "lz4"
        case .zstd: "zstd"
        }
    }
}
