public import Foundation

/// A topic: a name, its partitions and the settings they share.
public final class Topic: Sendable {
    public let name: String
    /// Kafka's topic id (KIP-516): made when the topic is created and kept beside its settings,
    /// so a topic deleted and created again under the same name is a different topic.
    public let id: UUID
    public let config: LogConfig
    public let partitions: [PartitionLog]
    public let partitioner: Partitioner

    init(name: String, id: UUID, config: LogConfig, partitions: [PartitionLog], partitioner: Partitioner) {
        self.name = name
        self.id = id
        self.config = config
        self.partitions = partitions
        self.partitioner = partitioner
    }

    public var partitionCount: Int32 { Int32(partitions.count) }

    public func partition(_ index: Int32) throws(StorageError) -> PartitionLog {
        guard index >= 0, index < partitions.count else { throw .unknownPartition(topic: name, partition: index) }
        return partitions[Int(index)]
    }

    /// Kafka's rules for topic names: 1 to 249 characters of ASCII letters, digits, '.', '_'
    /// and '-', and not "." or "..".
    public static func validate(name: String) throws(StorageError) {
        guard !name.isEmpty else { throw .invalidTopicName(name, reason: "empty") }
        guard name.utf8.count <= 249 else { throw .invalidTopicName(name, reason: "longer than 249 characters") }
        guard name != "." && name != ".." else { throw .invalidTopicName(name, reason: "'.' and '..' are reserved") }
        for character in name.unicodeScalars {
            let allowed =
                (character >= "a" && character <= "z") || (character >= "A" && character <= "Z")
                || (character >= "0" && character <= "9") || character == "." || character == "_" || character == "-"
            guard allowed else {
                throw .invalidTopicName(name, reason: "'\(character)' is not one of [a-zA-Z0-9._-]")
            }
        }
    }
}
