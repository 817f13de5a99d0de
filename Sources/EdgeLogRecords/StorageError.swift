#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
/// Everything the storage engine can refuse or fail with. Each case names what went wrong
/// precisely enough for an operator (or an HTTP/Kafka error mapping) to act on it.
public enum StorageError: Error, Sendable, Equatable, CustomStringConvertible {
    /// A batch's bytes are not a valid RecordBatch v2.
    case corruptBatch(reason: String)
    /// The stored CRC does not match the bytes.
    case checksumMismatch(expected: UInt32, actual: UInt32)
    /// A codec failed to compress or decompress.
    case compression(codec: CompressionCodec, reason: String)
    /// A single record is larger than the partition's maximum batch size.
    case recordTooLarge(bytes: Int, maxBytes: Int)
    /// The data directory's disk budget is used up and the overflow policy is `reject`.
    case diskBudgetExceeded(usedBytes: Int64, budgetBytes: Int64)
    /// The file system itself is full (ENOSPC/EDQUOT).
    case diskFull(path: String)
    /// A write or fsync failed earlier; the partition refuses appends until reopened, because
    /// it can no longer tell what reached the disk.
    case partitionFenced(partition: String, reason: String)
    /// The offset is outside [log start, log end].
    case offsetOutOfRange(offset: Int64, logStart: Int64, logEnd: Int64)
    case unknownTopic(String)
    case unknownPartition(topic: String, partition: Int32)
    case invalidTopicName(String, reason: String)
    case topicAlreadyExists(String)
    /// The log is closed or closing.
    case closed
    /// A system call failed.
    case io(operation: String, path: String, errno: Int32)
    /// A checkpoint file could not be parsed or its checksum did not match.
    case corruptCheckpoint(path: String, reason: String)

    public var description: String {
        switch self {
        case .corruptBatch(let reason): "corrupt record batch: \(reason)"
        case .checksumMismatch(let expected, let actual):
            "record batch CRC mismatch: stored \(hex(expected)), computed \(hex(actual))"
        case .compression(let codec, let reason): "\(codec) compression failed: \(reason)"
        case .recordTooLarge(let bytes, let maxBytes):
            "record of \(bytes) bytes is larger than the maximum batch size of \(maxBytes) bytes"
        case .diskBudgetExceeded(let used, let budget):
            "disk budget exceeded: \(used) of \(budget) bytes used and overflow policy is reject"
        case .diskFull(let path): "file system full while writing \(path)"
        case .partitionFenced(let partition, let reason):
            "partition \(partition) refuses appends after an I/O failure: \(reason)"
        case .offsetOutOfRange(let offset, let start, let end):
            "offset \(offset) is out of range [\(start), \(end)]"
        case .unknownTopic(let topic): "unknown topic '\(topic)'"
        case .unknownPartition(let topic, let partition): "topic '\(topic)' has no partition \(partition)"
        case .invalidTopicName(let name, let reason): "invalid topic name '\(name)': \(reason)"
        case .topicAlreadyExists(let name): "topic '\(name)' already exists"
        case .closed: "the log is closed"
        case .io(let operation, let path, let errno):
            "\(operation) \(path) failed: \(String(cString: strerror(errno))) (errno \(errno))"
        case .corruptCheckpoint(let path, let reason): "corrupt checkpoint \(path): \(reason)"
        }
    }
}

private func hex(_ value: UInt32) -> String {
    "0x" + String(value, radix: 16, uppercase: false)
}

