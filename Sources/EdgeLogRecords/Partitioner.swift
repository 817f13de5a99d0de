public import NIOCore
import Synchronization

/// Chooses partitions the way Kafka's producer does: murmur2 of the key for keyed records;
/// for records without a key, either round-robin per record or sticky per request (every
/// keyless record of one append goes to the same partition, the next append to the next one),
/// which keeps batches large.
public final class Partitioner: Sendable {
    public enum NullKeyStrategy: String, Sendable, Codable {
        case roundRobin = "round-robin"
        case sticky
    }

    public let nullKeyStrategy: NullKeyStrategy
    private let counter = Atomic<UInt64>(0)

    public init(nullKeyStrategy: NullKeyStrategy = .sticky) {
        self.nullKeyStrategy = nullKeyStrategy
    }

    /// The partition for every record of one request, in order.
    public func partitions(for records: [Record], partitionCount: Int32) -> [Int32] {
        precondition(partitionCount > 0)
        var sticky: Int32? = nil
        return records.map { record in
            if let key = record.key { return Murmur2.partition(for: key, partitionCount: partitionCount) }
            switch nullKeyStrategy {
            case .roundRobin:
                return next(partitionCount)
            case .sticky:
                if sticky == nil { sticky = next(partitionCount) }
                return sticky!
            }
        }
    }

    /// The partition for one record.
    public func partition(for key: ByteBuffer?, partitionCount: Int32) -> Int32 {
        if let key { return Murmur2.partition(for: key, partitionCount: partitionCount) }
        return next(partitionCount)
    }

    private func next(_ partitionCount: Int32) -> Int32 {
        let value = counter.wrappingAdd(1, ordering: .relaxed).oldValue
        return Int32(value % UInt64(partitionCount))
    }
}
