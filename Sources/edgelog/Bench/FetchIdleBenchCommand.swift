import ArgumentParser
import Foundation

/// `edgelog bench fetch-idle`: what an idle consumer of many partitions costs the daemon. A
/// consumer long-polls 100 empty partitions (500 ms each); the daemon's CPU time per Fetch is
/// measured with incremental fetch sessions (kafka-python keeps one, KIP-227) against the
/// same consumer with full fetches (fetch_session_slots = 0) in the same run, and against
/// librdkafka, which always sends full fetches (by topic id, v16).
struct FetchIdleBenchCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "fetch-idle", abstract: "Measure the daemon's CPU per idle long poll of a consumer of many partitions.")

    @Option(help: "Directory for benchmark data.")
    var directory = "./bench-data"

    @Option(help: "Partitions of the idle topic.")
    var partitions = 100

    @Option(help: "Seconds each consumer polls (after 5 s of warm-up), and the daemon idles alone before.")
    var seconds = 30

    @Option(help: "The Python benchmark scripts' directory.")
    var scripts = "Tests/Interop"

    struct Run {
        var cpuMicrosecondsPerFetch: Double
        var fetchesPerSecond: Double
    }

    func run() async throws {
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let executable = try FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")
        let ingest = IngestBenchmarks(directory: directory, messages: 0, executable: executable)
        var report = BenchResult.Report()
        let sessions = try measure(ingest, client: "kafka-python", slots: 1000)
        let full = try measure(ingest, client: "kafka-python", slots: 0)
        let librdkafka = try measure(ingest, client: "confluent", slots: 1000)
        report.add(BenchResult(
            name: "daemon CPU per idle long poll, \(partitions) partitions, kafka-python with an incremental fetch session",
            value: sessions.cpuMicrosecondsPerFetch, unit: "µs/fetch",
            reference: "the same consumer with full fetches (fetch_session_slots = 0)", referenceValue: full.cpuMicrosecondsPerFetch,
            target: "≤ 0.5",
            note: String(format: "%.1f fetches/s with a session, %.1f without", sessions.fetchesPerSecond, full.fetchesPerSecond)))
        report.add(BenchResult(
            name: "daemon CPU per idle long poll, \(partitions) partitions, confluent-kafka (full fetches by topic id)",
            value: librdkafka.cpuMicrosecondsPerFetch, unit: "µs/fetch",
            reference: "kafka-python with full fetches", referenceValue: full.cpuMicrosecondsPerFetch, target: "-",
            note: String(format: "%.1f fetches/s; librdkafka has no fetch sessions", librdkafka.fetchesPerSecond)))
        report.printTable()
    }

    private func measure(_ ingest: IngestBenchmarks, client: String, slots: Int) throws -> Run {
        let kafkaPort = IngestBenchmarks.freePort()
        let daemon = try ingest.startDaemon(
            extra: "[[topics]]\nname = \"idle\"\npartitions = \(partitions)\n", kafkaPort: kafkaPort,
            kafka: "fetch_session_slots = \(slots)")
        defer { daemon.stop() }
        // The daemon's own idle CPU (timers, metrics), subtracted from what the consumer costs.
        let pid = daemon.process.processIdentifier
        sleep(2)
        let idleBefore = ReplicationBenchmarks.cpuSeconds(pid: pid)
        sleep(UInt32(seconds))
        let idlePerSecond = (ReplicationBenchmarks.cpuSeconds(pid: pid) - idleBefore) / Double(seconds)
        let consumer = try ingest.launch("/usr/bin/env", [
            "python3", scripts + "/kafka_idle_consumer.py", "--bootstrap", "127.0.0.1:\(kafkaPort)", "--topic", "idle",
            "--client", client, "--seconds", "\(seconds + 10)",
        ], stdout: FileHandle.nullDevice)
        defer { consumer.terminate(); consumer.waitUntilExit() }
        try daemon.waitForMetric(#"edgelog_kafka_requests_total{api="fetch"}"#, atLeast: 1)
        sleep(5)  // warm-up: metadata, the session's first full fetch
        let cpuBefore = ReplicationBenchmarks.cpuSeconds(pid: pid)
        let fetchesBefore = fetches(daemon)
        let start = Date()
        sleep(UInt32(seconds))
        let elapsed = Date().timeIntervalSince(start)
        let cpu = ReplicationBenchmarks.cpuSeconds(pid: pid) - cpuBefore - idlePerSecond * elapsed
        let count = fetches(daemon) - fetchesBefore
        guard count > 0 else { throw BenchError("\(client) sent no Fetch while measured") }
        return Run(cpuMicrosecondsPerFetch: cpu * 1e6 / count, fetchesPerSecond: count / elapsed)
    }

    private func fetches(_ daemon: IngestBenchmarks.Daemon) -> Double {
        let line = (daemon.get("/metrics") ?? "").split(separator: "\n").first { $0.hasPrefix(#"edgelog_kafka_requests_total{api="fetch"}"#) }
        return line.flatMap { Double($0.split(separator: " ").last ?? "") } ?? 0
    }
}
