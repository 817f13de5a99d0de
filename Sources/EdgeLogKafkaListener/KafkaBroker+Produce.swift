import EdgeLogKafka
import EdgeLogStorage
import NIOCore
import EdgeLogCore

extension KafkaBroker {
    /// Validates every partition's batches, checks idempotent sequences and queues the
    /// appends now (in request order); the returned task answers once they are committed
    /// under the topic's flush policy. acks=0 gets no answer at all.
    func produce(_ request: ProduceRequest, correlationId: Int32, version: Int16) -> Action {
        typealias PartitionResponse = ProduceResponse.PartitionProduceResponse
        var pending: [(topic: String, answers: [Task<PartitionResponse, Never>])] = []
        for topic in request.topicData {
            var answers: [Task<PartitionResponse, Never>] = []
            for partition in topic.partitionData {
                answers.append(producePartition(topic: topic.name, partition: partition, acks: request.acks))
            }
            pending.append((topic.name, answers))
        }
        let acks = request.acks
        return .respond(Task {
            var responses: [ProduceResponse.TopicProduceResponse] = []
            for (topic, answers) in pending {
                var partitions: [PartitionResponse] = []
                for answer in answers { partitions.append(await answer.value) }
                responses.append(.init(name: topic, partitionResponses: partitions))
            }
            guard acks != 0 else { return nil }
            return self.encode(ProduceResponse(responses: responses), correlationId: correlationId, version: version)
        })
    }

    private func producePartition(
        topic: String, partition data: ProduceRequest.PartitionProduceData, acks: Int16
    ) -> Task<ProduceResponse.PartitionProduceResponse, Never> {
        let index = data.index
        func answer(_ code: KafkaErrorCode, _ message: String? = nil, offset: Int64 = -1) -> Task<ProduceResponse.PartitionProduceResponse, Never> {
            let response = ProduceResponse.PartitionProduceResponse(
                index: index, errorCode: code.rawValue, baseOffset: offset, logStartOffset: -1, errorMessage: message)
            return Task { response }
        }
        guard [0, 1, -1].contains(acks) else { return answer(.invalidRequiredAcks, "acks must be 0, 1 or -1") }
        guard let log = try? manager.partition(topic: topic, index) else {
            return answer(.unknownTopicOrPartition, "no partition \(topic)-\(index)")
        }
        guard let records = data.records, records.readableBytes > 0 else { return answer(.corruptMessage, "no record batch") }

        // One batch per partition, as Kafka requires of v3+ producers; checked before anything
        // is appended so a rejected request writes nothing.
        guard let size = RecordBatch.frameSize(in: records, at: records.readerIndex), size == records.readableBytes,
            size >= RecordBatch.Layout.headerSize
        else { return answer(.corruptMessage, "expected exactly one whole record batch") }
        let batch: RecordBatch
        do {
            guard records.getInteger(at: records.readerIndex + RecordBatch.Layout.magic, as: Int8.self) == RecordBatch.currentMagic else {
                return answer(.unsupportedForMessageFormat, "only record batch v2 (magic 2) is accepted")
            }
            batch = try RecordBatch(validating: records)
            try batch.verifyChecksum()
        } catch {
            return answer(.corruptMessage, "\(error)")
        }
        guard batch.codec != nil else {
            return answer(KafkaErrorCode(76), "unknown compression codec; use gzip, snappy, lz4 or zstd")
        }
        guard !batch.isTransactional, !batch.isControlBatch else {
            return answer(.unsupportedForMessageFormat, "transactions are not supported")
        }
        guard batch.recordCount > 0, batch.lastOffsetDelta == batch.recordCount - 1 else {
            return answer(.invalidRecord, "the batch's record count and last offset delta disagree")
        }

        var producerKey: ProducerStateTable.Key?
        if batch.producerId >= 0 {
            let key = ProducerStateTable.Key(topic: topic, partition: index, producerId: batch.producerId)
            do {
                try producers.restoreIfNeeded(topic: topic, partition: index, from: log)
            } catch {
                logger.error(
                    "cannot rebuild the idempotent producers of \(topic)-\(index) from the log; they start afresh",
                    metadata: ["edgelog.error": "\(error)"])
            }
            switch producers.check(
                key, epoch: batch.producerEpoch, firstSequence: batch.baseSequence, records: batch.lastOffsetDelta + 1,
                maxTimestamp: batch.maxTimestamp) {
            case .append:
                producerKey = key
            case .duplicate(let offset?):
                return answer(.none, offset: offset)
            case .duplicate(nil):
                // The original is still being written: the client retries and then learns its offset.
                return answer(.requestTimedOut, "the original of this retry is still being committed")
            case .producerUnknown:
                return answer(.unknownProducerId, "this producer's earlier batch failed; start a new producer epoch")
            case .outOfOrder(let expected):
                return answer(.outOfOrderSequenceNumber, "expected sequence \(expected), got \(batch.baseSequence)")
            case .staleEpoch(let current):
                return answer(.invalidProducerEpoch, "epoch \(batch.producerEpoch) is older than \(current)")
            }
        }
        let firstSequence = batch.baseSequence
        let producers = self.producers
        // Queued now, in request order; the task only waits for the commit.
        let (result, delivered) = AsyncStream.makeStream(of: Result<AppendResult, StorageError>.self, bufferingPolicy: .bufferingNewest(1))
        log.append(batches: records) { outcome in
            delivered.yield(outcome)
            delivered.finish()
        }
        return Task {
            var outcome = Result<AppendResult, StorageError>.failure(.closed)
            for await value in result { outcome = value }
            switch outcome {
            case .success(let appended):
                if let producerKey { producers.committed(producerKey, firstSequence: firstSequence, offset: appended.baseOffset) }
                return .init(index: index, errorCode: 0, baseOffset: appended.baseOffset, logStartOffset: log.logStartOffset)
            case .failure(let error):
                if let producerKey { producers.failed(producerKey) }
                let (code, message) = Self.kafkaError(for: error)
                return .init(index: index, errorCode: code.rawValue, baseOffset: -1, logStartOffset: -1, errorMessage: message)
            }
        }
    }

    /// The Kafka error a client can act on for a storage failure.
    static func kafkaError(for error: any Error) -> (KafkaErrorCode, String) {
        guard let error = error as? StorageError else { return (.unknownServerError, "\(error)") }
        switch error {
        case .recordTooLarge: return (.messageTooLarge, error.description)
        case .corruptBatch, .checksumMismatch: return (.corruptMessage, error.description)
        case .diskFull, .diskBudgetExceeded: return (.kafkaStorageError, error.description)
        default: return (.kafkaStorageError, error.description)
        }
    }
}
