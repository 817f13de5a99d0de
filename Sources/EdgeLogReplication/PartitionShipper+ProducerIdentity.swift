import EdgeLogKafka
import EdgeLogStorage
import EdgeLogCore

/// The edge's producer identity, kept across restarts, so that a crash does not send the
/// upstream what it already holds.
///
/// With partitions mapped one to one, a batch's sequence number is derived from its local
/// offset: `(baseOffset - sequenceBase) mod 2^31`, where `sequenceBase` is the local offset the
/// producer id started at. The id, its epoch and the base are written (fsynced) beside the
/// replication checkpoint before the first batch goes out under them. After a restart the
/// shipper asks the upstream (DescribeProducers, KIP-664) for this producer's last sequence,
/// which names the first local offset the upstream does not hold, and resumes there instead of
/// at the checkpoint, which lags behind by up to a checkpoint interval. An upstream that does
/// not answer DescribeProducers (Tansu 0.6) still recognises resent batches by their unchanged
/// sequence numbers as far as its own window goes (the last five batches, as in Kafka);
/// beyond that it refuses them as out of order, the shipper takes a new producer id, and the
/// duplicates that may follow are counted (`possible_duplicates`).
///
/// Re-batching by key makes new batches that have no local offsets; it keeps today's
/// per-start producer id.
struct ProducerIdentity: Sendable, Equatable {
    var id: Int64
    var epoch: Int16
    /// The local offset whose batch carries sequence 0; nil when sequences are counted per
    /// upstream partition (re-batching by key).
    var sequenceBase: Int64?

    static let sequenceMask: Int64 = 0x7FFF_FFFF

    func sequence(at offset: Int64) -> Int32? {
        sequenceBase.map { Int32(truncatingIfNeeded: (offset - $0) & Self.sequenceMask) }
    }

    /// The first offset at or after `from` whose sequence follows `lastSequence`: where the
    /// upstream's copy of this producer's batches ends.
    func offset(after lastSequence: Int32, from: Int64) -> Int64? {
        guard let base = sequenceBase, lastSequence >= 0 else { return nil }
        let wanted = (Int64(lastSequence) + 1) & Self.sequenceMask
        return from + ((wanted - ((from - base) & Self.sequenceMask)) & Self.sequenceMask)
    }
}

extension PartitionShipper {
    var identityPath: String { log.directory + "/consumer-\(checkpointName).producer" }

    /// The persisted identity, or a new one from the upstream, persisted before use.
    func establishProducer() async throws -> ProducerIdentity {
        guard upstream.partitionMapping == .same else {
            let (id, epoch) = try await cluster.initProducerId()
            return ProducerIdentity(id: id, epoch: epoch, sequenceBase: nil)
        }
        if let saved = try? Checkpoint.read(from: identityPath), let id = saved["producer_id"],
            let epoch = saved["producer_epoch"], let base = saved["sequence_base"]
        {
            return ProducerIdentity(id: id, epoch: Int16(truncatingIfNeeded: epoch), sequenceBase: base)
        }
        let (id, epoch) = try await cluster.initProducerId()
        let identity = ProducerIdentity(id: id, epoch: epoch, sequenceBase: acked)
        do {
            try Checkpoint(["producer_id": id, "producer_epoch": Int64(epoch), "sequence_base": acked]).write(to: identityPath)
        } catch {
            // Shipping goes on; only a crash before the next success would resend more.
            logger.warning("cannot persist the replication producer id: \(error)")
        }
        return identity
    }

    /// Forgets an identity the upstream no longer knows; the next one starts afresh.
    func discardProducer() {
        try? FileSystem.remove(identityPath)
    }

    /// Where the upstream's copy of this producer's batches ends, when it can tell
    /// (DescribeProducers) and that is past `from` and within the log; nil otherwise.
    func upstreamEnd(of producer: ProducerIdentity, from: Int64, connection: KafkaConnection) async -> Int64? {
        guard producer.sequenceBase != nil, connection.apiVersions[KafkaAPIKey.describeProducers.rawValue] != nil,
            let response = try? await connection.send(DescribeProducersRequest(topics: [
                .init(name: upstreamTopic, partitionIndexes: [log.partition]),
            ])),
            let partition = response.topics.first?.partitions.first, partition.errorCode == 0,
            let state = partition.activeProducers.first(where: { $0.producerId == producer.id }),
            state.producerEpoch == Int32(producer.epoch),
            let end = producer.offset(after: state.lastSequence, from: from),
            end > from, end <= log.logEndOffset
        else { return nil }
        return end
    }
}
