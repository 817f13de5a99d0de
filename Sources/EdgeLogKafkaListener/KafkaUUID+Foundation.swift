import EdgeLogKafka
import Foundation
import EdgeLogCore

extension KafkaUUID {
    /// A topic id as Kafka sends it: the UUID's 16 bytes as two big-endian halves.
    init(_ uuid: UUID) {
        let bytes = withUnsafeBytes(of: uuid.uuid) { Array($0) }
        self.init(
            high: bytes[0..<8].reduce(0) { $0 << 8 | UInt64($1) },
            low: bytes[8..<16].reduce(0) { $0 << 8 | UInt64($1) })
    }
}

extension UUID {
    init(kafka id: KafkaUUID) {
        var bytes = [UInt8](repeating: 0, count: 16)
        for index in 0..<8 {
            bytes[index] = UInt8(truncatingIfNeeded: id.high >> (56 - 8 * UInt64(index)))
            bytes[8 + index] = UInt8(truncatingIfNeeded: id.low >> (56 - 8 * UInt64(index)))
        }
        self = bytes.withUnsafeBytes { UUID(uuid: $0.load(as: uuid_t.self)) }
    }
}
