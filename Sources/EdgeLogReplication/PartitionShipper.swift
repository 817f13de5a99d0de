import EdgeLogKafka
import EdgeLogStorage
import Logging
import NIOCore
import Synchronization
import EdgeLogCore

/// Ships one local partition to the same partition of its upstream topic, as an idempotent
/// producer: stored batches go as they are (compressed bytes untouched), restamped with the
/// producer id, epoch and sequence and a new CRC; up to `maxInFlight` Produce requests are
/// pipelined on the leader's connection; the acknowledged offset only moves on a successful
/// (or duplicate-sequence) answer, in order.
///
/// After a connection loss or a leadership change it resends from the first unacknowledged
/// batch with the same producer id and sequences, so the broker drops what it already has.
/// Only a lost producer state (a restarted upstream, an expired producer) makes it take a new
/// producer id, and then what was in flight may arrive twice: that is counted.
final class PartitionShipper: Sendable {
    enum State: String, Sendable {
        case starting, replicating, caughtUp = "caught-up", retrying, stalled
    }

    struct Progress: Sendable {
        /// Next local offset the upstream has not acknowledged.
        var acked: Int64
        /// What the checkpoint file holds.
        var persisted: Int64
        var state = State.starting
        var lastError: String?
        var lastErrorMs: Int64?
        var sentBatches = 0
        var ackedRecords: Int64 = 0
        var ackedBytes: Int64 = 0
        /// Records sent again after an error (most are then dropped by the broker as retries).
        var resentRecords: Int64 = 0
        /// Retries the broker recognised (DUPLICATE_SEQUENCE_NUMBER): not stored twice.
        var deduplicatedBatches = 0
        /// Records re-sent under a new producer id, which may now be upstream twice.
        var possibleDuplicates: Int64 = 0
        var producerResets = 0
        /// Records not sent again after a restart because the upstream said it held them.
        var heldUpstreamRecords: Int64 = 0
        /// Records retention deleted before they were shipped (only without `required`).
        var skippedRecords: Int64 = 0
        /// When the upstream last had everything (wall clock, ms): the lag in seconds is the
        /// time since, as Kafka judges a follower by how long ago it last caught up.
        var caughtUpAtMs: Int64
    }

    enum Failure: Error, CustomStringConvertible {
        case producerStateLost(KafkaErrorCode, String?)
        case broker(KafkaErrorCode, String?)
        case upstreamTopicMissing(String)
        case tooFewUpstreamPartitions(topic: String, upstream: Int, needed: Int32)
        case storage(String)
        case unsupported(String)

        var description: String {
            switch self {
            case .producerStateLost(let code, let message):
                "upstream lost this producer's state (\(code))\(message.map { ": \($0)" } ?? ""); starting a new producer id"
            case .broker(let code, let message): "upstream answered \(code)\(message.map { ": \($0)" } ?? "")"
            case .upstreamTopicMissing(let topic):
                "upstream topic '\(topic)' does not exist and create_topics is off; create it upstream"
            case .tooFewUpstreamPartitions(let topic, let upstream, let needed):
                "upstream topic '\(topic)' has \(upstream) partitions, local partition \(needed - 1) needs at least \(needed); add partitions upstream"
            case .storage(let reason): "local log: \(reason)"
            case .unsupported(let reason): reason
            }
        }

        /// Errors that no retry soon will fix: wait the longest backoff between attempts.
        var isStalling: Bool {
            switch self {
            case .upstreamTopicMissing, .tooFewUpstreamPartitions, .storage, .unsupported: true
            case .broker(let code, _):
                [.messageTooLarge, .recordListTooLarge, .invalidRecord, .corruptMessage, .topicAuthorizationFailed,
                 .clusterAuthorizationFailed, .unsupportedForMessageFormat, .invalidTopicException, .policyViolation]
                    .contains(code)
            case .producerStateLost: false
            }
        }
    }

    /// One local batch on its way: the Produce requests that carry it (one per upstream
    /// leader; one in all unless it was split by key) and the sequences after it.
    private struct InFlight {
        var baseOffset: Int64
        var nextOffset: Int64
        var records: Int32
        var bytes: Int
        var sequencesAfter: [Int32: Int32]
        var requests: [(connection: KafkaConnection, partitions: Int, response: EventLoopFuture<ProduceResponse>)]
    }

    let log: PartitionLog
    let upstream: EdgelogConfig.Upstream
    let upstreamTopic: String
    let localPartitionCount: Int32
    let cluster: KafkaCluster
    let limiter: ByteRateLimiter?
    let logger: Logger
    let progress: Mutex<Progress>
    /// Set when the local topic is deleted: the shipper stops for good.
    private let retired = Atomic<Bool>(false)
    private let started = Atomic<Bool>(false)

    var checkpointName: String { Self.checkpointName(upstream: upstream.name) }
    static func checkpointName(upstream: String) -> String { "replication-\(upstream)" }

    init(
        log: PartitionLog, localPartitionCount: Int32, upstream: EdgelogConfig.Upstream, cluster: KafkaCluster,
        limiter: ByteRateLimiter?, logger: Logger
    ) {
        self.log = log
        self.localPartitionCount = localPartitionCount
        self.upstream = upstream
        self.upstreamTopic = upstream.upstreamTopic(for: log.topic)
        self.cluster = cluster
        self.limiter = limiter
        var logger = logger
        logger[metadataKey: "edgelog.partition"] = "\(log.topic)-\(log.partition)"
        logger[metadataKey: "edgelog.upstream"] = "\(upstream.name)"
        self.logger = logger
        let start: Int64
        do throws(StorageError) {
            start = try log.consumerCheckpoint(named: Self.checkpointName(upstream: upstream.name)) ?? log.logStartOffset
        } catch {
            // Resending everything is safe under at-least-once; skipping is not.
            logger.warning("replication checkpoint unreadable (\(error)); resending from the log start")
            start = log.logStartOffset
        }
        // Before the first catch-up, the oldest unshipped record's timestamp is the best guess.
        var caughtUpAt = wallClockMs()
        if start < log.logEndOffset, let bytes = try? log.read(from: start, maxBytes: RecordBatch.Layout.headerSize),
            let oldest = bytes.getInteger(at: bytes.readerIndex + RecordBatch.Layout.baseTimestamp, as: Int64.self)
        {
            caughtUpAt = min(caughtUpAt, oldest)
        }
        self.progress = Mutex(Progress(acked: start, persisted: start, caughtUpAtMs: caughtUpAt))
    }

    var acked: Int64 { progress.withLock { $0.acked } }

    /// Stops the shipper of a deleted topic (its log is closed; nothing is left to ship).
    func retire() { retired.store(true, ordering: .relaxed) }
    var isRetired: Bool { retired.load(ordering: .relaxed) }

    /// True the first time only: whoever gets true runs the shipper.
    func claimStart() -> Bool { !started.exchange(true, ordering: .relaxed) }

    // MARK: The loop

    /// Runs until the task is cancelled; then lets what is in flight finish (for a moment)
    /// so that a clean stop re-sends nothing.
    func run() async {
        var backoff = RetryBackoff(minimumMs: upstream.retryBackoffMs, maximumMs: upstream.retryBackoffMaxMs)
        var producer: ProducerIdentity?
        var ackedSequences: [Int32: Int32] = [:]
        var highestSent = acked
        while !Task.isCancelled && !isRetired {
            do {
                if producer == nil {
                    producer = try await establishProducer()
                    ackedSequences = [:]
                }
                let upstreamPartitions = try await ensureUpstreamTopic()
                try await ship(
                    producer: producer!, upstreamPartitions: upstreamPartitions, ackedSequences: &ackedSequences,
                    highestSent: &highestSent, backoff: &backoff)
                return
            } catch let failure as Failure {
                if case .producerStateLost = failure {
                    producer = nil
                    discardProducer()
                    let unacked = max(0, highestSent - acked)
                    progress.withLock {
                        $0.producerResets += 1
                        $0.possibleDuplicates += unacked
                    }
                }
                record(failure.description, state: failure.isStalling ? .stalled : .retrying)
                if failure.isStalling {
                    await sleep(.milliseconds(upstream.retryBackoffMaxMs))
                } else {
                    await sleep(backoff.next())
                }
            } catch let error as KafkaClientError {
                record(error.description, state: .retrying)
                await sleep(backoff.next())
            } catch {
                if Task.isCancelled { return }
                record("\(error)", state: .retrying)
                await sleep(backoff.next())
            }
        }
    }

    /// Makes sure the upstream topic exists (creating it when allowed) and can take this
    /// partition; returns its partition count.
    private func ensureUpstreamTopic() async throws -> Int32 {
        var info = try await cluster.refreshMetadata(topics: [upstreamTopic])[upstreamTopic]
        if info == nil || info?.error == .unknownTopicOrPartition {
            guard upstream.createTopics else { throw Failure.upstreamTopicMissing(upstreamTopic) }
            logger.info("creating upstream topic '\(upstreamTopic)' with \(localPartitionCount) partitions")
            try await cluster.createTopic(upstreamTopic, partitions: localPartitionCount)
            info = try await cluster.refreshMetadata(topics: [upstreamTopic])[upstreamTopic]
        }
        guard let info else { throw Failure.upstreamTopicMissing(upstreamTopic) }
        guard info.error == .none else { throw Failure.broker(info.error, "metadata for '\(upstreamTopic)'") }
        guard !info.partitions.isEmpty else { throw Failure.broker(.leaderNotAvailable, "'\(upstreamTopic)' has no partitions") }
        guard upstream.partitionMapping == .byKey || info.partitions[log.partition] != nil else {
            throw Failure.tooFewUpstreamPartitions(topic: upstreamTopic, upstream: info.partitions.count, needed: log.partition + 1)
        }
        return Int32(info.partitions.count)
    }

    private func ship(
        producer: ProducerIdentity, upstreamPartitions: Int32, ackedSequences: inout [Int32: Int32],
        highestSent: inout Int64, backoff: inout RetryBackoff
    ) async throws {
        // By key, records are re-batched for the upstream's partition count, unless it equals
        // the local one: then the local murmur2 placement already is the upstream's.
        let splitByKey = upstream.partitionMapping == .byKey && upstreamPartitions != localPartitionCount
        let compressor = BatchCompressor()
        var connections: [Int32: KafkaConnection] = [:]
        func leader(of partition: Int32) async throws -> KafkaConnection {
            if let known = connections[partition], known.isActive { return known }
            let connection = try await cluster.leaderConnection(topic: upstreamTopic, partition: partition)
            let version = try connection.negotiatedVersion(of: ProduceRequest.self)
            guard version >= 3 else { throw Failure.unsupported("upstream only speaks Produce v\(version); v3+ carries record batch v2") }
            connections[partition] = connection
            return connection
        }
        let first = try await leader(of: splitByKey ? 0 : log.partition)

        var next = try resumeOffset()
        if let end = await upstreamEnd(of: producer, from: next, connection: first) {
            logger.info("the upstream already holds offsets \(next)..<\(end) from this producer; resuming after them")
            progress.withLock {
                $0.heldUpstreamRecords += end - next
                $0.acked = end
            }
            highestSent = max(highestSent, end)
            next = end
        }
        var sequences = ackedSequences
        var window: [InFlight] = []
        var readAhead = ByteBuffer()
        var draining = false
        setState(.replicating)

        do {
            while true {
                if Task.isCancelled && !draining {
                    draining = true
                    // In-flight answers normally arrive within milliseconds; give them a moment,
                    // then cut the connections so a hung upstream cannot hold the shutdown.
                    let open = Array(connections.values)
                    Task.detached {
                        try? await Task.sleep(for: .seconds(2))
                        for connection in open { connection.close() }
                    }
                }
                while !draining && window.count < upstream.maxInFlight {
                    if readAhead.readableBytes == 0 {
                        readAhead = try readLog(from: next)
                        if readAhead.readableBytes == 0 { break }
                    }
                    guard let size = RecordBatch.frameSize(in: readAhead, at: readAhead.readerIndex),
                        let slice = readAhead.readSlice(length: size)
                    else {
                        readAhead.clear()
                        break
                    }
                    let batch: RecordBatch
                    do { batch = try RecordBatch(validating: slice) } catch {
                        throw Failure.storage("batch at offset \(next): \(error)")
                    }
                    guard batch.nextOffset > next else { continue }
                    let parts = splitByKey
                        ? try split(batch, into: upstreamPartitions, compressor: compressor) : [(log.partition, batch)]
                    var requests: [ObjectIdentifier: (KafkaConnection, [ProduceRequest.PartitionProduceData])] = [:]
                    var sequencesAfter: [Int32: Int32] = [:]
                    var bytes = 0
                    for (partition, var part) in parts {
                        // The broker assigns offsets; base offset 0 keeps the inner offsets
                        // "continuous" in its eyes, so it stores compressed batches as they are.
                        part.setBaseOffset(0)
                        part.setPartitionLeaderEpoch(-1)
                        // Derived from the local offset when the identity has a sequence base
                        // (partitions one to one); counted per upstream partition otherwise.
                        let sequence = producer.sequence(at: batch.baseOffset) ?? sequences[partition] ?? 0
                        part.setProducer(id: producer.id, epoch: producer.epoch, baseSequence: sequence)
                        sequences[partition] = Self.increment(sequence, by: part.lastOffsetDelta + 1)
                        sequencesAfter[partition] = sequences[partition]
                        bytes += part.sizeInBytes
                        let connection = try await leader(of: partition)
                        requests[ObjectIdentifier(connection), default: (connection, [])].1.append(
                            .init(index: partition, records: part.buffer))
                    }
                    if let limiter { try await limiter.acquire(bytes) }
                    var sent: [(connection: KafkaConnection, partitions: Int, response: EventLoopFuture<ProduceResponse>)] = []
                    for (connection, partitions) in requests.values {
                        let request = ProduceRequest(
                            acks: -1, timeoutMs: Int32(clamping: upstream.requestTimeoutMs),
                            topicData: [.init(name: upstreamTopic, partitionData: partitions)])
                        let version = try connection.negotiatedVersion(of: ProduceRequest.self)
                        sent.append((connection, partitions.count, try connection.sendPipelined(request, version: version)))
                    }
                    let records = batch.lastOffsetDelta + 1
                    window.append(InFlight(
                        baseOffset: batch.baseOffset, nextOffset: batch.nextOffset, records: records, bytes: bytes,
                        sequencesAfter: sequencesAfter, requests: sent))
                    let resent = max(0, min(highestSent, batch.nextOffset) - max(batch.baseOffset, next))
                    highestSent = max(highestSent, batch.nextOffset)
                    next = batch.nextOffset
                    progress.withLock {
                        $0.sentBatches += 1
                        $0.resentRecords += resent
                    }
                }
                guard !window.isEmpty else {
                    if draining || isRetired { return }
                    let now = wallClockMs()
                    progress.withLock {
                        $0.caughtUpAtMs = now
                        if $0.state != .caughtUp { $0.state = .caughtUp }
                    }
                    await log.waitForData(at: next, timeout: .seconds(1))
                    continue
                }
                let head = window.removeFirst()
                var duplicate = false
                for request in head.requests {
                    let response: ProduceResponse
                    do {
                        response = try await request.response.get()
                    } catch {
                        if draining { return }
                        await cluster.discard(request.connection)
                        await settle([head] + window)
                        throw error
                    }
                    let answers = response.responses.flatMap(\.partitionResponses)
                    guard answers.count == request.partitions else {
                        await settle([head] + window)
                        throw Failure.broker(.unknownServerError, "answered \(answers.count) of \(request.partitions) partitions")
                    }
                    for answer in answers {
                        let code = KafkaErrorCode(answer.errorCode)
                        switch code {
                        case .none:
                            break
                        case .duplicateSequenceNumber:
                            duplicate = true
                        case .outOfOrderSequenceNumber, .unknownProducerId, .invalidProducerEpoch, .producerFenced,
                             .invalidProducerIdMapping:
                            await settle([head] + window)
                            throw Failure.producerStateLost(code, answer.errorMessage)
                        default:
                            await settle([head] + window)
                            if draining { return }
                            throw Failure.broker(code, answer.errorMessage)
                        }
                    }
                }
                ackedSequences.merge(head.sequencesAfter) { $1 }
                backoff.reset()
                let caughtUp = head.nextOffset >= log.logEndOffset
                let now = caughtUp ? wallClockMs() : 0
                progress.withLock {
                    $0.acked = head.nextOffset
                    if caughtUp { $0.caughtUpAtMs = now }
                    $0.ackedRecords += Int64(head.records)
                    $0.ackedBytes += Int64(head.bytes)
                    if duplicate { $0.deduplicatedBatches += 1 }
                    if $0.state != .replicating { $0.state = .replicating }
                }
            }
        } catch {
            // Whatever failed, nothing still in flight may be overtaken by the resend.
            await settle(window)
            throw error
        }
    }

    /// Waits for the requests still in flight after a failure, ignoring their answers, so
    /// that the resend that follows cannot overtake them.
    private func settle(_ window: [InFlight]) async {
        for entry in window {
            for request in entry.requests { _ = try? await request.response.get() }
        }
    }
}
