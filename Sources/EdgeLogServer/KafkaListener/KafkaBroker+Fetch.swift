import EdgeLogKafka
import EdgeLogStorage
import NIOCore

extension KafkaBroker {
    /// Stored batches as they are (the first may start below the fetch offset; clients skip
    /// what they did not ask for), at least one whole batch per partition that has data
    /// (KIP-74), waiting up to max_wait_ms for min_bytes. Fetch sessions are declined
    /// (session id 0), so clients send full fetches.
    ///
    /// With `leavingRecordsInFiles` the record sets are not read: each partition's stored span
    /// is returned beside the response (its `records` left nil) for the connection to send with
    /// sendfile; otherwise the spans are nil and the records are in the response.
    func fetch(_ request: FetchRequest, leavingRecordsInFiles: Bool) async -> (FetchResponse, [[StoredSpan?]]?) {
        let deadline = ContinuousClock.now + .milliseconds(Int(max(0, request.maxWaitMs)))
        while true {
            let (response, spans, bytes, waitOn) = fetchOnce(request, leavingRecordsInFiles: leavingRecordsInFiles)
            let remaining = ContinuousClock.now.duration(to: deadline)
            if bytes >= Int(max(request.minBytes, 1)) || waitOn.isEmpty || remaining <= .zero || Task.isCancelled {
                return (response, leavingRecordsInFiles ? spans : nil)
            }
            // Long poll: park on every requested partition until one of them grows.
            await withTaskGroup(of: Void.self) { group in
                for (log, offset) in waitOn {
                    group.addTask { await log.waitForData(at: offset, timeout: remaining) }
                }
                await group.next()
                group.cancelAll()
            }
        }
    }

    private func fetchOnce(
        _ request: FetchRequest, leavingRecordsInFiles: Bool
    ) -> (FetchResponse, [[StoredSpan?]], Int, [(PartitionLog, Int64)]) {
        var budget = Int(request.maxBytes > 0 ? request.maxBytes : Int32.max)
        var total = 0
        var waitOn: [(PartitionLog, Int64)] = []
        var topics: [FetchResponse.FetchableTopicResponse] = []
        var spans: [[StoredSpan?]] = []
        for topic in request.topics {
            var partitions: [FetchResponse.PartitionData] = []
            spans.append([])
            for partition in topic.partitions {
                spans[spans.count - 1].append(nil)
                // Every partition answer carries a record set, empty when there is nothing to
                // send: clients (librdkafka) reject a null one as a parse failure and retry
                // at once instead of acting on the error code (auto.offset.reset).
                var data = FetchResponse.PartitionData(partitionIndex: partition.partition, records: ByteBuffer())
                guard let log = try? manager.partition(topic: topic.topic, partition.partition) else {
                    data.errorCode = KafkaErrorCode.unknownTopicOrPartition.rawValue
                    data.highWatermark = -1
                    data.lastStableOffset = -1
                    partitions.append(data)
                    continue
                }
                let offsets = log.offsets
                data.highWatermark = offsets.logEndOffset
                data.lastStableOffset = offsets.logEndOffset
                data.logStartOffset = offsets.logStartOffset
                guard partition.fetchOffset >= offsets.logStartOffset, partition.fetchOffset <= offsets.logEndOffset else {
                    data.errorCode = KafkaErrorCode.offsetOutOfRange.rawValue
                    partitions.append(data)
                    continue
                }
                if partition.fetchOffset == offsets.logEndOffset {
                    waitOn.append((log, partition.fetchOffset))
                } else {
                    // The first partition with data gets at least one whole batch even past
                    // the budget; after that the budget is respected.
                    let limit = min(Int(max(partition.partitionMaxBytes, 1)), total == 0 ? max(budget, 1) : budget)
                    if limit > 0 || total == 0 {
                        do {
                            if leavingRecordsInFiles {
                                let span = try log.locate(from: partition.fetchOffset, maxBytes: max(limit, 1))
                                total += span?.length ?? 0
                                budget -= span?.length ?? 0
                                spans[spans.count - 1][partitions.count] = span
                                if span != nil { data.records = nil }  // spliced in from the file
                            } else {
                                let bytes = try log.read(from: partition.fetchOffset, maxBytes: max(limit, 1))
                                total += bytes.readableBytes
                                budget -= bytes.readableBytes
                                data.records = bytes
                            }
                        } catch {
                            let (code, _) = Self.fetchError(error)
                            data.errorCode = code.rawValue
                        }
                    }
                }
                partitions.append(data)
            }
            topics.append(.init(topic: topic.topic, partitions: partitions))
        }
        return (FetchResponse(sessionId: 0, responses: topics), spans, total, waitOn)
    }

    private static func fetchError(_ error: any Error) -> (KafkaErrorCode, String) {
        if case .offsetOutOfRange = error as? StorageError { return (.offsetOutOfRange, "\(error)") }
        return (.kafkaStorageError, "\(error)")
    }

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
