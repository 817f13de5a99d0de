import EdgeLogKafka
import EdgeLogStorage
import Synchronization
import EdgeLogCore

/// Idempotent-producer bookkeeping per partition, as a Kafka broker keeps it: each producer's
/// epoch, the next sequence it must send, and its last five batches, so that a retry of one
/// of them is recognised (answered with its original offset, not stored again) and a gap is
/// refused with OUT_OF_ORDER_SEQUENCE_NUMBER.
///
/// Held in memory and rebuilt from the log: the first idempotent batch for a partition after a
/// start reads the producer fields of the batches in the partition's last
/// ``restoreWindowBytes`` (headers only), so a hub restarted while an edge had batches in flight
/// recognises their retries instead of storing them twice. A producer whose last batch is
/// older than that window starts afresh at whatever sequence it sends (at-least-once).
///
/// A producer idle for ``expiry`` is forgotten (Kafka's producer.id.expiration.ms, one day), so
/// that the table does not grow with every producer that ever wrote.
package final class ProducerStateTable: Sendable {
    static let restoreWindowBytes: Int64 = 16 << 20
    static let expiry: Duration = .seconds(24 * 3600)

    struct Key: Hashable {
        var topic: String
        var partition: Int32
        var producerId: Int64
    }

    private struct Producer {
        var epoch: Int16
        var nextSequence: Int32
        /// An append of this producer failed: what reached the log after it is uncertain, so
        /// the producer must start a new epoch (it gets UNKNOWN_PRODUCER_ID until then).
        var broken = false
        /// (first sequence, last sequence, base offset once committed), newest last.
        var recent: [(first: Int32, last: Int32, offset: Int64?)]
        var lastSeen: ContinuousClock.Instant = .now
        /// The largest record timestamp of its newest batch (DescribeProducers' LastTimestamp).
        var lastTimestamp: Int64 = -1
    }

    /// What DescribeProducers reports of one producer of a partition.
    struct Description: Equatable {
        var producerId: Int64
        var epoch: Int16
        var lastSequence: Int32
        var lastTimestamp: Int64
    }

    enum Verdict: Equatable {
        case append
        /// A retry of a stored batch: answer success with its offset (nil while its append is
        /// still pending).
        case duplicate(offset: Int64?)
        case outOfOrder(expected: Int32)
        case staleEpoch(current: Int16)
        case producerUnknown
    }

    private struct PartitionKey: Hashable {
        var topic: String
        var partition: Int32
    }

    private struct State {
        var producers: [Key: Producer] = [:]
        /// Partitions whose producers were rebuilt from the log since the start.
        var restored: Set<PartitionKey> = []
    }

    private let state = Mutex(State())

    /// Rebuilds the producers of a partition from its stored batches, once per start; later
    /// calls return at once. Call before the first `check` for the partition.
    ///
    /// The log is read outside the lock; the result is merged only into producers the table
    /// does not know yet, so a connection that restored and accepted batches meanwhile is not
    /// rolled back by another one whose read of the log is older.
    func restoreIfNeeded(topic: String, partition: Int32, from log: PartitionLog) throws(StorageError) {
        let key = PartitionKey(topic: topic, partition: partition)
        guard state.withLock({ !$0.restored.contains(key) }) else { return }
        let rebuilt: [Key: Producer]
        do {
            rebuilt = try Self.rebuild(topic: topic, partition: partition, from: log.producerBatches(inLast: Self.restoreWindowBytes))
        } catch {
            // Marked restored all the same: the partition's producers start afresh (at least
            // once) rather than every produce failing on the same unreadable header.
            state.withLock { _ = $0.restored.insert(key) }
            throw error
        }
        state.withLock { state in
            guard state.restored.insert(key).inserted else { return }
            for (producerKey, producer) in rebuilt where state.producers[producerKey] == nil {
                state.producers[producerKey] = producer
            }
        }
    }

    /// Each producer's state after the batches, oldest first, as if they had just been
    /// appended: the log's order is the truth, so a change of epoch either way starts over.
    private static func rebuild(topic: String, partition: Int32, from batches: [ProducerBatch]) -> [Key: Producer] {
        var producers: [Key: Producer] = [:]
        for batch in batches {
            let key = Key(topic: topic, partition: partition, producerId: batch.producerId)
            let last = add(batch.baseSequence, batch.recordCount - 1)
            var producer = producers[key] ?? Producer(epoch: batch.producerEpoch, nextSequence: 0, recent: [])
            if producer.epoch != batch.producerEpoch {
                producer = Producer(epoch: batch.producerEpoch, nextSequence: 0, recent: [])
            }
            producer.recent.append((batch.baseSequence, last, batch.baseOffset))
            if producer.recent.count > 5 { producer.recent.removeFirst() }
            producer.nextSequence = add(last, 1)
            producer.lastTimestamp = batch.maxTimestamp
            producers[key] = producer
        }
        return producers
    }

    /// Checks a batch and, when it is to be appended, records it as the producer's newest.
    func check(
        _ key: Key, epoch: Int16, firstSequence: Int32, records: Int32, maxTimestamp: Int64 = -1,
        now: ContinuousClock.Instant = .now
    ) -> Verdict {
        let last = Self.add(firstSequence, records - 1)
        return state.withLock { state in
            state.producers[key]?.lastSeen = now
            guard var producer = state.producers[key], epoch <= producer.epoch else {
                // A new producer, or a new epoch of one: start from its sequence.
                state.producers[key] = Producer(
                    epoch: epoch, nextSequence: Self.add(last, 1), recent: [(firstSequence, last, nil)], lastSeen: now,
                    lastTimestamp: maxTimestamp)
                return .append
            }
            if epoch < producer.epoch { return .staleEpoch(current: producer.epoch) }
            if producer.broken { return .producerUnknown }
            if firstSequence == producer.nextSequence {
                producer.recent.append((firstSequence, last, nil))
                if producer.recent.count > 5 { producer.recent.removeFirst() }
                producer.nextSequence = Self.add(last, 1)
                producer.lastTimestamp = maxTimestamp
                state.producers[key] = producer
                return .append
            }
            if let stored = producer.recent.first(where: { $0.first == firstSequence && $0.last == last }) {
                return .duplicate(offset: stored.offset)
            }
            return .outOfOrder(expected: producer.nextSequence)
        }
    }

    /// Records where an accepted batch landed, for answering its retries.
    func committed(_ key: Key, firstSequence: Int32, offset: Int64) {
        state.withLock { state in
            guard var producer = state.producers[key],
                let index = producer.recent.firstIndex(where: { $0.first == firstSequence })
            else { return }
            producer.recent[index].offset = offset
            state.producers[key] = producer
        }
    }

    /// Marks a producer whose append failed; it must begin a new epoch (or take a new id).
    func failed(_ key: Key) {
        state.withLock { $0.producers[key]?.broken = true }
    }

    /// Forgets producers idle for longer than `expiry`; returns how many.
    @discardableResult
    func expire(now: ContinuousClock.Instant = .now, after expiry: Duration = ProducerStateTable.expiry) -> Int {
        state.withLock { state in
            let before = state.producers.count
            state.producers = state.producers.filter { now - $0.value.lastSeen < expiry }
            return before - state.producers.count
        }
    }

    var count: Int { state.withLock { $0.producers.count } }

    /// The producers of one partition that the table knows, by id. Call `restoreIfNeeded`
    /// first so that a restarted broker answers from its log.
    func describe(topic: String, partition: Int32) -> [Description] {
        state.withLock { state in
            state.producers.compactMap { key, producer in
                guard key.topic == topic, key.partition == partition, !producer.broken else { return nil }
                return Description(
                    producerId: key.producerId, epoch: producer.epoch,
                    lastSequence: producer.recent.last?.last ?? -1, lastTimestamp: producer.lastTimestamp)
            }.sorted { $0.producerId < $1.producerId }
        }
    }

    /// Forgets every producer of a topic (deleted).
    func forget(topic: String) {
        state.withLock { state in
            state.producers = state.producers.filter { $0.key.topic != topic }
            state.restored = state.restored.filter { $0.topic != topic }
        }
    }

    /// Kafka's sequence arithmetic: wraps from Int32.max to 0.
    static func add(_ sequence: Int32, _ count: Int32) -> Int32 { ProducerSequence.add(sequence, count) }
}
