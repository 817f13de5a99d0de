import EdgeLogInspector
import EdgeLogStorage
import Foundation
import Logging
import NIOCore

/// Segment bytes from disk, read as recovery and `edgelog log verify` read them: the input is
/// written as the only segment of a partition, which is then opened (recovery: scan, cut a
/// corrupt tail, rebuild indexes), read back record by record, and verified. Whatever recovery
/// keeps must read without an error and verify clean.
enum SegmentFuzzer: FuzzTarget {
    static let directory = NSTemporaryDirectory() + "edgelog-fuzz-segment-\(getpid())"
    nonisolated(unsafe) static let compressor = BatchCompressor(maxDecompressedBytes: 1 << 20)

    static func run(_ bytes: UnsafeRawBufferPointer) {
        try? FileManager.default.removeItem(atPath: directory)
        try! FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        try! Data(bytes).write(to: URL(fileURLWithPath: directory + "/00000000000000000000.log"))
        var config = LogConfig()
        config.flush = .interval(milliseconds: 1000)  // no fsync per input
        let logger = Logger(label: "fuzz", factory: { _ in SwiftLogNoOpLogHandler() })
        guard let (log, _) = try? PartitionLog.open(topic: "f", partition: 0, directory: directory, config: config, logger: logger)
        else { return }
        defer { log.close() }
        let records: [Record]
        do { records = try log.readRecords(from: log.logStartOffset, compressor: compressor) } catch {
            preconditionFailure("what recovery kept does not read: \(error)")
        }
        precondition(records.count <= Int(log.logEndOffset - log.logStartOffset), "more records than offsets")
        log.close()
        guard let report = try? LogInspector.verify(partitionDirectory: directory, compressor: compressor) else { return }
        precondition(report.problems.isEmpty, "recovered partition does not verify: \(report.problems)")
    }

    static func seeds() -> [(name: String, bytes: [UInt8])] {
        CompressionCodec.allCases.map { codec in
            var builder = RecordBatchBuilder(codec: codec)
            for index in 0..<5 {
                builder.append(Record(timestamp: 1_764_547_200_000 + Int64(index), key: ByteBuffer(string: "k\(index)"),
                    value: ByteBuffer(string: "value \(index)"), headers: [RecordHeader(key: "h", value: ByteBuffer(string: "v"))]))
            }
            var batch = ByteBuffer()
            _ = try! builder.finish(baseOffset: 0, into: &batch)
            return ("batch-\(codec)", Array(batch.readableBytesView))
        }
    }
}
