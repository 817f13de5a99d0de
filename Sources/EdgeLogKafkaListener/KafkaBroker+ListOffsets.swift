import EdgeLogKafka
import EdgeLogStorage
import EdgeLogCore

extension KafkaBroker {
    /// Earliest (-2), latest (-1), the largest timestamp's offset (-3, v7+), or the first
    /// offset at or after a timestamp (-1 when there is none).
    func listOffsets(_ request: ListOffsetsRequest) -> ListOffsetsResponse {
        let compressor = BatchCompressor()
        return ListOffsetsResponse(topics: request.topics.map { topic in
            .init(name: topic.name, partitions: topic.partitions.map { partition in
                var result = ListOffsetsResponse.ListOffsetsPartitionResponse(partitionIndex: partition.partitionIndex)
                guard let log = try? manager.partition(topic: topic.name, partition.partitionIndex) else {
                    result.errorCode = KafkaErrorCode.unknownTopicOrPartition.rawValue
                    return result
                }
                guard partition.currentLeaderEpoch <= Self.leaderEpoch else {
                    result.errorCode = KafkaErrorCode.unknownLeaderEpoch.rawValue
                    return result
                }
                let offsets = log.offsets
                result.leaderEpoch = Self.leaderEpoch
                switch partition.timestamp {
                case -2:
                    result.offset = offsets.logStartOffset
                case -1:
                    result.offset = offsets.logEndOffset
                case -3:
                    // The last record carries the largest timestamp in an append-ordered log
                    // of producer timestamps closely enough for this query's use (tooling).
                    result.offset = max(offsets.logStartOffset, offsets.logEndOffset - 1)
                default:
                    do {
                        let offset = try log.offset(forTimestamp: partition.timestamp, compressor: compressor)
                        if offset < offsets.logEndOffset {
                            result.offset = offset
                            result.timestamp = partition.timestamp
                        } else {
                            result.offset = -1
                        }
                    } catch {
                        result.errorCode = KafkaErrorCode.kafkaStorageError.rawValue
                    }
                }
                return result
            })
        })
    }
}
