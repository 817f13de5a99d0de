import ArgumentParser
import EdgeLogStorage
import Foundation
import Logging
import NIOCore

/// `edgelog demo`: what `scripts/run` does until the daemon lands. Opens (and recovers) a data
/// directory, appends sensor readings keyed by device to a 3-partition topic through the
/// group-commit appenders, and shows where each went and how to read it back.
struct DemoCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "demo", abstract: "Append sample sensor readings to a local log and show how to read them back.")

    @Option(help: "The data directory.")
    var data = "./data"

    @Option(help: "Readings to append.")
    var count = 1000

    func run() async throws {
        var configuration = LogManager.Configuration(dataDirectory: data)
        configuration.retentionCheckIntervalMs = nil
        let (manager, reports) = try LogManager.open(configuration, logger: Logger(label: "edgelog"))
        defer { manager.close() }
        for report in reports where report.cutData || report.checkpointProblem != nil {
            print("recovery: \(report)")
        }
        let topic = try manager.topic("sensors") ?? manager.createTopic("sensors", partitions: 3)
        let now = wallClockMs()
        let records = (0..<count).map { index in
            let device = "device-\(index % 8)"
            return Record(
                timestamp: now + Int64(index), key: ByteBuffer(string: device),
                value: ByteBuffer(string: "{\"device\":\"\(device)\",\"seq\":\(index),\"celsius\":\(18 + index % 9).5}"),
                headers: [RecordHeader(key: "source", value: ByteBuffer(string: "demo"))])
        }
        let assignment = topic.partitioner.partitions(for: records, partitionCount: topic.partitionCount)
        var perPartition: [Int32: [Record]] = [:]
        for (record, partition) in zip(records, assignment) { perPartition[partition, default: []].append(record) }
        for partition in perPartition.keys.sorted() {
            let result = try await topic.partitions[Int(partition)].append(perPartition[partition]!)
            print("sensors-\(partition): appended offsets \(result.baseOffset)...\(result.lastOffset)")
        }
        print("")
        for log in topic.partitions {
            print("\(log.name): offsets [\(log.logStartOffset), \(log.logEndOffset)), \(log.sizeBytes) bytes, codec \(topic.config.codec)")
        }
        print("""

            Read it back:
              .build/debug/edgelog log dump \(data)/sensors-0 --records
              .build/debug/edgelog log verify \(data)/sensors-0 \(data)/sensors-1 \(data)/sensors-2
            Run again to append more; the log recovers and continues its offsets.
            """)
    }
}
