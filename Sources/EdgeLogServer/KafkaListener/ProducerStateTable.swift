import Synchronization

/// Idempotent-producer bookkeeping per partition, as a Kafka broker keeps it: each producer's
/// epoch, the next sequence it must send, and its last five batches, so that a retry of one
/// of them is recognised (answered with its original offset, not stored again) and a gap is
/// refused with OUT_OF_ORDER_SEQUENCE_NUMBER.
///
/// Held in memory: after a restart a producer's first batch is accepted at whatever sequence
/// it carries (the retries of batches in flight at a crash can then be stored twice, which is
/// at-least-once; Kafka itself snapshots this state, which edgelog may do later).
final class ProducerStateTable: Sendable {
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

    private let producers = Mutex<[Key: Producer]>([:])

    /// Checks a batch and, when it is to be appended, records it as the producer's newest.
    func check(_ key: Key, epoch: Int16, firstSequence: Int32, records: Int32) -> Verdict {
        let last = Self.add(firstSequence, records - 1)
        return producers.withLock { producers in
            guard var producer = producers[key], epoch <= producer.epoch else {
                // A new producer, or a new epoch of one: start from its sequence.
                producers[key] = Producer(epoch: epoch, nextSequence: Self.add(last, 1), recent: [(firstSequence, last, nil)])
                return .append
            }
            if epoch < producer.epoch { return .staleEpoch(current: producer.epoch) }
            if producer.broken { return .producerUnknown }
            if firstSequence == producer.nextSequence {
                producer.recent.append((firstSequence, last, nil))
                if producer.recent.count > 5 { producer.recent.removeFirst() }
                producer.nextSequence = Self.add(last, 1)
                producers[key] = producer
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
        producers.withLock { producers in
            guard var producer = producers[key],
                let index = producer.recent.firstIndex(where: { $0.first == firstSequence })
            else { return }
            producer.recent[index].offset = offset
            producers[key] = producer
        }
    }

    /// Marks a producer whose append failed; it must begin a new epoch (or take a new id).
    func failed(_ key: Key) {
        producers.withLock { $0[key]?.broken = true }
    }

    /// Forgets every producer of a topic (deleted).
    func forget(topic: String) {
        producers.withLock { producers in producers = producers.filter { $0.key.topic != topic } }
    }

    /// Kafka's sequence arithmetic: wraps from Int32.max to 0.
    static func add(_ sequence: Int32, _ count: Int32) -> Int32 {
        sequence > Int32.max &- count ? count &- (Int32.max &- sequence) &- 1 : sequence &+ count
    }
}
