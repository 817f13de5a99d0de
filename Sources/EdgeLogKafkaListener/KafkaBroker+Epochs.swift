import EdgeLogKafka
import EdgeLogStorage
import EdgeLogCore

extension KafkaBroker {
    /// The leader epoch of every partition: edgelog is the only replica of its log and has
    /// led it since the partition was created, so the epoch never changes.
    static let leaderEpoch: Int32 = 0

    /// KIP-320's truncation check. A client asks where epoch E ended; the one epoch there is
    /// ends at the log end, a later one is unknown (-1, -1), as Kafka answers for an epoch
    /// newer than its own. A client whose position is past that end learns that the log was
    /// truncated under it (librdkafka then resets as `auto.offset.reset` says). A client that
    /// thinks the leader is newer than ours gets UNKNOWN_LEADER_EPOCH and refreshes metadata.
    func offsetForLeaderEpoch(_ request: OffsetForLeaderEpochRequest) -> OffsetForLeaderEpochResponse {
        OffsetForLeaderEpochResponse(topics: request.topics.map { topic in
            .init(topic: topic.topic, partitions: topic.partitions.map { partition in
                var result = OffsetForLeaderEpochResponse.EpochEndOffset(partition: partition.partition)
                guard let log = try? manager.partition(topic: topic.topic, partition.partition) else {
                    result.errorCode = KafkaErrorCode.unknownTopicOrPartition.rawValue
                    return result
                }
                if partition.currentLeaderEpoch > Self.leaderEpoch {
                    result.errorCode = KafkaErrorCode.unknownLeaderEpoch.rawValue
                } else if partition.leaderEpoch >= 0 && partition.leaderEpoch <= Self.leaderEpoch {
                    result.leaderEpoch = Self.leaderEpoch
                    result.endOffset = log.offsets.logEndOffset
                }
                return result
            })
        })
    }

    /// KIP-664: the idempotent producers each partition knows (rebuilt from the log after a
    /// restart), so an operator or an edge's replicator can see where a producer stands.
    /// Transactions are not served, so no producer has an open transaction.
    func describeProducers(_ request: DescribeProducersRequest) -> DescribeProducersResponse {
        DescribeProducersResponse(topics: request.topics.map { topic in
            .init(name: topic.name, partitions: topic.partitionIndexes.map { index in
                var result = DescribeProducersResponse.PartitionResponse(partitionIndex: index)
                guard let log = try? manager.partition(topic: topic.name, index) else {
                    result.errorCode = KafkaErrorCode.unknownTopicOrPartition.rawValue
                    result.errorMessage = "no partition \(topic.name)-\(index)"
                    return result
                }
                do {
                    try producers.restoreIfNeeded(topic: topic.name, partition: index, from: log)
                } catch {
                    result.errorCode = KafkaErrorCode.kafkaStorageError.rawValue
                    result.errorMessage = "cannot read the producers of \(topic.name)-\(index) from the log: \(error)"
                    return result
                }
                result.activeProducers = producers.describe(topic: topic.name, partition: index).map {
                    .init(
                        producerId: $0.producerId, producerEpoch: Int32($0.epoch), lastSequence: $0.lastSequence,
                        lastTimestamp: $0.lastTimestamp, coordinatorEpoch: -1, currentTxnStartOffset: -1)
                }
                return result
            })
        })
    }
}
