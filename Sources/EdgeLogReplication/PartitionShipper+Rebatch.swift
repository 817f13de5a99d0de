import EdgeLogKafka
import EdgeLogStorage
import Logging
import NIOCore
import Synchronization
import EdgeLogCore

/// Re-batching for an upstream whose partition count differs (`partition_mapping = "by-key"`).
extension PartitionShipper {
    /// Re-batches a stored batch by key for an upstream with `partitions` partitions, as a
    /// Kafka producer would place the records (murmur2 of the key; records without a key stay
    /// together). This decompresses and compresses again, with the stored batch's codec.
    func split(
        _ batch: RecordBatch, into partitions: Int32, compressor: BatchCompressor
    ) throws -> [(Int32, RecordBatch)] {
        var builders: [Int32: RecordBatchBuilder] = [:]
        do {
            var records = try batch.records(using: compressor)
            while let record = try records.next() {
                let partition = record.key.map { Murmur2.partition(for: $0, partitionCount: partitions) }
                    ?? log.partition % partitions
                builders[partition, default: RecordBatchBuilder(codec: batch.codec ?? .none)].append(record)
            }
            var parts: [(Int32, RecordBatch)] = []
            for (partition, var builder) in builders.sorted(by: { $0.key < $1.key }) {
                var bytes = ByteBuffer()
                _ = try builder.finish(baseOffset: 0, into: &bytes)
                parts.append((partition, try RecordBatch(validating: bytes)))
            }
            return parts
        } catch {
            throw Failure.storage("cannot re-batch the batch at offset \(batch.baseOffset): \(error)")
        }
    }
}
