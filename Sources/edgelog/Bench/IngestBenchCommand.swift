import ArgumentParser
import Foundation

/// `edgelog bench ingest`: MQTT and HTTP ingest of the daemon (this executable, started as a
/// child process) against mosquitto's own delivery rate and the HTTP server's own ceiling,
/// plus the daemon's memory. Needs mosquitto, mosquitto-clients and wrk (Debian packages).
struct IngestBenchCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ingest", abstract: "Measure MQTT and HTTP ingest against mosquitto and wrk references.")

    @Option(help: "Directory for benchmark data.")
    var directory = "./bench-data"

    @Option(help: "MQTT messages per run (100-byte payloads, QoS 1).")
    var messages = 100_000

    @Option(help: "Seconds per wrk run.")
    var seconds = 10

    func run() async throws {
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let executable = try FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")
        let bench = IngestBenchmarks(directory: directory, messages: messages, executable: executable)
        var report = BenchResult.Report()

        let reference1 = try bench.mosquittoReference(publishers: 1)
        let fast = try bench.edgelogMQTT(ack: "fast", connections: 1, publishers: 1)
        report.add(BenchResult(
            name: "MQTT ingest, ack=fast, 1 connection", value: fast, unit: "msg/s",
            reference: "mosquitto → null subscriber", referenceValue: reference1, target: "≥ 0.9"))
        let durable = try bench.edgelogMQTT(ack: "durable", connections: 1, publishers: 1)
        report.add(BenchResult(
            name: "MQTT ingest, ack=durable, 1 connection", value: durable, unit: "msg/s",
            reference: "mosquitto → null subscriber", referenceValue: reference1, note: "one commit per message"))
        let reference8 = try bench.mosquittoReference(publishers: 8)
        let durable8 = try bench.edgelogMQTT(ack: "durable", connections: 8, publishers: 8)
        report.add(BenchResult(
            name: "MQTT ingest, ack=durable, 8 shared-subscription connections", value: durable8, unit: "msg/s",
            reference: "mosquitto → null subscriber, 8 publishers", referenceValue: reference8))

        let daemon = try bench.startDaemon(extra: "[[topics]]\nname = \"web\"\npartitions = 4\n")
        defer { daemon.stop() }
        let idle = daemon.memory()
        let base = "http://127.0.0.1:\(daemon.port)"
        let healthz = try bench.wrk(url: base + "/healthz", connections: 64, seconds: seconds, script: nil)
        let script = try bench.ndjsonScript(records: 100)
        let bulk = try bench.wrk(url: base + "/v1/topics/web/records", connections: 64, seconds: seconds, script: script)
        let loaded = daemon.memory()
        report.add(BenchResult(
            name: "HTTP bulk ingest, NDJSON of 100 × 100 B, 64 connections", value: bulk.requestsPerSecond * 100,
            unit: "records/s", reference: "GET /healthz, 64 connections (requests/s × 100)",
            referenceValue: healthz.requestsPerSecond * 100,
            note: String(format: "p50 %.1f ms, p99 %.1f ms per request (fsync=always)", bulk.p50Ms, bulk.p99Ms)))
        report.add(BenchResult(name: "resident memory, idle", value: idle.rssMB, unit: "MB", target: "< 50 MB"))
        report.add(BenchResult(name: "resident memory, peak under HTTP load", value: loaded.peakMB, unit: "MB", target: "< 200 MB"))

        report.printTable()
    }
}
