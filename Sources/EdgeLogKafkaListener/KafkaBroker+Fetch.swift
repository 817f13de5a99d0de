import EdgeLogKafka
import EdgeLogStorage
import Foundation
import NIOCore
import EdgeLogCore

extension KafkaBroker {
    /// Stored batches as they are (the first may start below the fetch offset; clients skip
    /// what they did not ask for), at least one whole batch per partition that has data
    /// (KIP-74), waiting up to max_wait_ms for min_bytes. Topics are named, or from v13 on
    /// identified by topic id; incremental fetch sessions (KIP-227) go through `fetchSessions`.
    ///
    /// With `leavingRecordsInFiles` the record sets are not read: each partition's stored span
    /// is returned beside the response (its `records` left nil) for the connection to send with
    /// sendfile; otherwise the spans are nil and the records are in the response.
    func fetch(_ request: FetchRequest, version: Int16, leavingRecordsInFiles: Bool) async -> (FetchResponse, [[StoredSpan?]]?) {
        let byId = version >= 13
        let context = fetchSessions.context(
            sessionId: request.sessionId, epoch: request.sessionEpoch,
            requested: fetchTargets(request, byId: byId), forgotten: forgottenPartitions(request, byId: byId))
        fetchSessions.count(context)
        if byId { fetchesByTopicId.increment() }
        let sessionId: Int32
        switch context {
        case .failed(let code):
            return (FetchResponse(errorCode: code.rawValue, sessionId: 0), leavingRecordsInFiles ? [] : nil)
        case .sessionless: sessionId = 0
        case .created(let id, _), .incremental(let id, _): sessionId = id
        }
        let targets = context.targets
        let deadline = ContinuousClock.now + .milliseconds(Int(max(0, request.maxWaitMs)))
        while true {
            var (answers, bytes, waitOn) = fetchOnce(targets, maxBytes: request.maxBytes, leavingRecordsInFiles: leavingRecordsInFiles)
            if case .incremental = context {
                answers.removeAll { !FetchSessionCache.changed($0.data, hasSpan: $0.span != nil, since: $0.target.entry) }
            }
            let remaining = ContinuousClock.now.duration(to: deadline)
            // As Kafka's delayed fetch: enough bytes, or an error to report, ends the wait.
            let done = answers.contains { $0.data.errorCode != 0 } || (!answers.isEmpty && bytes >= Int(max(request.minBytes, 1)))
            if done || waitOn.isEmpty || remaining <= .zero || Task.isCancelled {
                if sessionId != 0 {
                    fetchSessions.recordSent(sessionId: sessionId, answers.map { ($0.target.key, $0.data.highWatermark, $0.data.logStartOffset) })
                }
                let (response, spans) = Self.assemble(answers, sessionId: sessionId, byId: byId)
                return (response, leavingRecordsInFiles ? spans : nil)
            }
            // Long poll: park on every requested partition until one of them grows.
            await PartitionLog.waitForAny(waitOn, timeout: remaining)
        }
    }

    /// The partitions a request names, with their topic resolved (by id from v13 on).
    private func fetchTargets(_ request: FetchRequest, byId: Bool) -> [FetchSessionCache.Target] {
        request.topics.flatMap { topic in
            let name = byId ? manager.topic(id: UUID(kafka: topic.topicId))?.name : topic.topic
            return topic.partitions.map { partition in
                FetchSessionCache.Target(
                    key: .init(topic: name ?? "", partition: partition.partition),
                    entry: .init(
                        topicId: topic.topicId, fetchOffset: partition.fetchOffset, maxBytes: partition.partitionMaxBytes,
                        currentLeaderEpoch: partition.currentLeaderEpoch),
                    unknownTopicId: name == nil)
            }
        }
    }

    private func forgottenPartitions(_ request: FetchRequest, byId: Bool) -> [FetchSessionCache.PartitionKey] {
        request.forgottenTopicsData.flatMap { topic in
            let name = byId ? manager.topic(id: UUID(kafka: topic.topicId))?.name : topic.topic
            return name.map { name in topic.partitions.map { FetchSessionCache.PartitionKey(topic: name, partition: $0) } } ?? []
        }
    }

    struct FetchAnswer {
        var target: FetchSessionCache.Target
        var data: FetchResponse.PartitionData
        var span: StoredSpan?
    }

    private func fetchOnce(
        _ targets: [FetchSessionCache.Target], maxBytes: Int32, leavingRecordsInFiles: Bool
    ) -> ([FetchAnswer], Int, [(PartitionLog, Int64)]) {
        var budget = Int(maxBytes > 0 ? maxBytes : Int32.max)
        var total = 0
        var waitOn: [(PartitionLog, Int64)] = []
        var answers: [FetchAnswer] = []
        answers.reserveCapacity(targets.count)
        for target in targets {
            // Every partition answer carries a record set, empty when there is nothing to
            // send: clients (librdkafka) reject a null one as a parse failure and retry
            // at once instead of acting on the error code (auto.offset.reset).
            var answer = FetchAnswer(target: target, data: .init(partitionIndex: target.key.partition, records: ByteBuffer()))
            defer { answers.append(answer) }
            guard !target.unknownTopicId, let log = try? manager.partition(topic: target.key.topic, target.key.partition) else {
                answer.data.errorCode = (target.unknownTopicId ? KafkaErrorCode.unknownTopicId : .unknownTopicOrPartition).rawValue
                answer.data.highWatermark = -1
                answer.data.lastStableOffset = -1
                continue
            }
            // KIP-320: a client that knows a newer leader than this one has stale metadata
            // about someone else; it refreshes and comes back.
            guard target.entry.currentLeaderEpoch <= Self.leaderEpoch else {
                answer.data.errorCode = KafkaErrorCode.unknownLeaderEpoch.rawValue
                continue
            }
            let offsets = log.offsets
            let fetchOffset = target.entry.fetchOffset
            answer.data.highWatermark = offsets.logEndOffset
            answer.data.lastStableOffset = offsets.logEndOffset
            answer.data.logStartOffset = offsets.logStartOffset
            guard fetchOffset >= offsets.logStartOffset, fetchOffset <= offsets.logEndOffset else {
                answer.data.errorCode = KafkaErrorCode.offsetOutOfRange.rawValue
                continue
            }
            if fetchOffset == offsets.logEndOffset {
                waitOn.append((log, fetchOffset))
                continue
            }
            // The first partition with data gets at least one whole batch even past the
            // budget; after that the budget is respected.
            let limit = min(Int(max(target.entry.maxBytes, 1)), total == 0 ? max(budget, 1) : budget)
            guard limit > 0 || total == 0 else { continue }
            do {
                if leavingRecordsInFiles {
                    answer.span = try log.locate(from: fetchOffset, maxBytes: max(limit, 1))
                    if let span = answer.span {
                        answer.data.records = nil  // spliced in from the file
                        total += span.length
                        budget -= span.length
                    }
                } else {
                    let bytes = try log.read(from: fetchOffset, maxBytes: max(limit, 1))
                    total += bytes.readableBytes
                    budget -= bytes.readableBytes
                    answer.data.records = bytes
                }
            } catch {
                answer.data.errorCode = Self.fetchError(error).rawValue
            }
        }
        return (answers, total, waitOn)
    }

    /// The answers grouped by topic, in order: by name, or by topic id from v13 on.
    private static func assemble(_ answers: [FetchAnswer], sessionId: Int32, byId: Bool) -> (FetchResponse, [[StoredSpan?]]) {
        var topics: [FetchResponse.FetchableTopicResponse] = []
        var spans: [[StoredSpan?]] = []
        var previous: FetchSessionCache.Target?
        for answer in answers {
            let sameTopic = previous.map {
                byId ? $0.entry.topicId == answer.target.entry.topicId : $0.key.topic == answer.target.key.topic
            } ?? false
            if !sameTopic {
                topics.append(.init(topic: byId ? "" : answer.target.key.topic, topicId: byId ? answer.target.entry.topicId : .zero))
                spans.append([])
            }
            topics[topics.count - 1].partitions.append(answer.data)
            spans[spans.count - 1].append(answer.span)
            previous = answer.target
        }
        return (FetchResponse(sessionId: sessionId, responses: topics), spans)
    }

    private static func fetchError(_ error: any Error) -> KafkaErrorCode {
        if case .offsetOutOfRange = error as? StorageError { return .offsetOutOfRange }
        return .kafkaStorageError
    }
}
