import ArgumentParser
import EdgeLogKafka
import Foundation

/// `edgelog bench kafka`: the Kafka listener against a Tansu broker in the same run, both
/// driven by confluent-kafka: produce throughput, consume throughput of the same records, and
/// the daemon's memory with 100 idle client connections.
struct KafkaBenchCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "kafka", abstract: "Measure the Kafka listener against Tansu with confluent-kafka.")

    @Option(help: "Directory for benchmark data.")
    var directory = "./bench-data"

    @Option(help: "Records per run.")
    var records = 500_000

    @Option(help: "Value size in bytes.")
    var size = 200

    @Option(help: "Partitions of the topic.")
    var partitions = 4

    @Option(help: "The Python benchmark scripts' directory.")
    var scripts = "Tests/Interop"

    func run() async throws {
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let executable = try FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")
        let ingest = IngestBenchmarks(directory: directory, messages: 0, executable: executable)
        let replication = ReplicationBenchmarks(directory: directory, executable: executable, ingest: ingest)
        var report = BenchResult.Report()

        let (tansu, tansuPort) = try replication.startTansu()
        defer {
            kill(tansu.processIdentifier, SIGKILL)  // it inherits a mask that blocks SIGTERM
            tansu.waitUntilExit()
        }
        let kafkaPort = IngestBenchmarks.freePort()
        let daemon = try ingest.startDaemon(extra: """
            [[topics]]
            name = "bench"
            partitions = \(partitions)
            flush = "interval"
            flush_interval_ms = 1000
            """, kafkaPort: kafkaPort)
        var stopped = false
        defer { if !stopped { daemon.stop() } }

        func python(_ script: String, _ arguments: [String]) throws -> [String: Double] {
            let pipe = Pipe()
            let process = try ingest.launch("/usr/bin/env", ["python3", scripts + "/" + script] + arguments, stdout: pipe.fileHandleForWriting)
            try pipe.fileHandleForWriting.close()
            let output = pipe.fileHandleForReading.readDataToEndOfFile()
            process.waitUntilExit()
            guard process.terminationStatus == 0, let line = output.split(separator: 0x0A).last,
                let json = try JSONSerialization.jsonObject(with: Data(line)) as? [String: Any]
            else { throw BenchError("\(script) failed: \(String(decoding: output, as: UTF8.self))") }
            return json.compactMapValues { ($0 as? NSNumber)?.doubleValue }
        }
        let common = ["--topic", "bench", "--records", "\(records)"]
        let produceTansu = try python("kafka_produce_bench.py", ["--bootstrap", "127.0.0.1:\(tansuPort)", "--size", "\(size)", "--keys", "64", "--partitions", "\(partitions)"] + common)
        let produceEdge = try python("kafka_produce_bench.py", ["--bootstrap", "127.0.0.1:\(kafkaPort)", "--size", "\(size)", "--keys", "64", "--partitions", "\(partitions)"] + common)
        report.add(BenchResult(
            name: "produce, confluent-kafka (linger 5 ms, gzip, acks=all), \(records) × \(size) B",
            value: produceEdge["records_per_s"] ?? 0, unit: "records/s",
            reference: "the same producer to Tansu", referenceValue: produceTansu["records_per_s"], target: "≥ 1.0",
            note: "edgelog flush = interval (Tansu keeps memory only)"))
        let consumeTansu = try python("kafka_consume_bench.py", ["--bootstrap", "127.0.0.1:\(tansuPort)"] + common)
        let cpuBefore = ReplicationBenchmarks.cpuSeconds(pid: daemon.process.processIdentifier)
        let consumeEdge = try python("kafka_consume_bench.py", ["--bootstrap", "127.0.0.1:\(kafkaPort)"] + common)
        let sendfileCPU = ReplicationBenchmarks.cpuSeconds(pid: daemon.process.processIdentifier) - cpuBefore
        report.add(BenchResult(
            name: "consume, confluent-kafka, the same records from the beginning",
            value: consumeEdge["records_per_s"] ?? 0, unit: "records/s",
            reference: "the same consumer from Tansu", referenceValue: consumeTansu["records_per_s"], target: "≥ 1.0",
            note: String(format: "%.1f MB/s of values (Tansu %.1f); record sets sent with sendfile", consumeEdge["mb_per_s"] ?? 0, consumeTansu["mb_per_s"] ?? 0)))

        // The same data served again with zero_copy off: record sets read into memory, then
        // written (what a TLS connection does), to show what sendfile is worth.
        daemon.stop()
        stopped = true
        let copying = try ingest.startDaemon(
            extra: "[[topics]]\nname = \"bench\"\npartitions = \(partitions)\n", kafkaPort: kafkaPort,
            kafka: "zero_copy = false", dataDirectory: daemon.dataDirectory)
        defer { copying.stop() }
        let idle = copying.memory()
        var connections: [KafkaConnection] = []
        for _ in 0..<100 {
            connections.append(try await KafkaConnection.connect(
                to: KafkaBrokerAddress(host: "127.0.0.1", port: kafkaPort), configuration: KafkaClientConfiguration()))
        }
        try await Task.sleep(for: .milliseconds(500))
        let connected = copying.memory()
        for connection in connections { connection.close() }
        report.add(BenchResult(
            name: "resident memory with 100 idle Kafka client connections", value: connected.rssMB, unit: "MB",
            reference: "the same daemon before them", referenceValue: idle.rssMB, target: "< 100 MB",
            note: "a daemon just started on the benchmark's log, before any fetch"))
        let copyingBefore = ReplicationBenchmarks.cpuSeconds(pid: copying.process.processIdentifier)
        let consumeCopying = try python("kafka_consume_bench.py", ["--bootstrap", "127.0.0.1:\(kafkaPort)"] + common)
        let copyingCPU = ReplicationBenchmarks.cpuSeconds(pid: copying.process.processIdentifier) - copyingBefore
        let gigabytes = (consumeEdge["bytes"] ?? 0) / 1e9
        report.add(BenchResult(
            name: "consume as above, record sets sent with sendfile (zero_copy on)",
            value: consumeEdge["records_per_s"] ?? 0, unit: "records/s",
            reference: "zero_copy off (pread, then write)", referenceValue: consumeCopying["records_per_s"], target: "≥ 1.0",
            note: String(format: "off: %.1f MB/s of values; the consumer (Python) sets the pace", consumeCopying["mb_per_s"] ?? 0)))
        report.add(BenchResult(
            name: "edgelog CPU seconds per GB of values consumed, zero_copy on",
            value: sendfileCPU / max(gigabytes, 1e-9), unit: "s/GB",
            reference: "zero_copy off", referenceValue: copyingCPU / max(gigabytes, 1e-9), target: "≤ 1.0",
            note: "the daemon's user + system time during each consume run"))

        report.printTable()
    }
}
