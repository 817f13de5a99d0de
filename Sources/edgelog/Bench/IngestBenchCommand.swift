import ArgumentParser
import Foundation

/// `edgelog bench ingest`: MQTT and HTTP ingest of the daemon (this executable, started as a
/// child process) against mosquitto's own delivery rate and the HTTP server's own ceiling,
/// plus the daemon's memory. Needs mosquitto, mosquitto-clients and wrk (Debian packages).
struct IngestBenchCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ingest", abstract: "Measure MQTT and HTTP ingest against mosquitto and wrk references (run from the repository).")

    @Option(help: "Directory for benchmark data.")
    var directory = "./bench-data"

    @Option(help: "MQTT messages per run (100-byte payloads, QoS 1).")
    var messages = 100_000

    @Option(help: "Seconds per wrk run.")
    var seconds = 10

    @Option(help: "Seconds of the MQTT latency run.")
    var latencySeconds = 10

    @Option(help: "Seconds of the MQTT kill -9 run (0: skip it).")
    var crashSeconds = 60

    @Option(help: "Tests/Interop, with the MQTT publisher's source and the latency consumer.")
    var interop = "Tests/Interop"

    /// deploy/mosquitto-edgelog.conf's queue settings (run from the repository).
    static func deployQueueSettings() throws -> [String] {
        try String(contentsOfFile: "deploy/mosquitto-edgelog.conf", encoding: .utf8).split(separator: "\n").map(String.init)
            .filter { line in ["max_queued_messages ", "max_queued_bytes ", "max_inflight_messages "].contains { line.hasPrefix($0) } }
    }

    func run() async throws {
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let executable = try FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")
        var bench = IngestBenchmarks(directory: directory, messages: messages, executable: executable)
        bench.interop = interop
        var report = BenchResult.Report()

        let reference1 = try bench.mosquittoReference(publishers: 1)
        let fast = try bench.edgelogMQTT(ack: "fast", connections: 1, publishers: 1)
        report.add(BenchResult(
            name: "MQTT ingest, ack=fast, 1 connection", value: fast, unit: "msg/s",
            reference: "mosquitto → null subscriber", referenceValue: reference1, target: "≥ 1.0"))
        let durable = try bench.edgelogMQTT(ack: "durable", connections: 1, publishers: 1)
        report.add(BenchResult(
            name: "MQTT ingest, ack=durable, flush=always, 1 connection", value: durable, unit: "msg/s",
            reference: "mosquitto → null subscriber", referenceValue: reference1, target: "≥ 0.8",
            note: "one commit per group of what the socket holds"))
        let reference4 = try bench.mosquittoReference(publishers: 4)
        let durable4 = try bench.edgelogMQTT(ack: "durable", connections: 4, publishers: 4)
        report.add(BenchResult(
            name: "MQTT ingest, ack=durable, flush=always, 4 shared-subscription connections", value: durable4,
            unit: "msg/s", reference: "mosquitto → null subscriber, 4 publishers", referenceValue: reference4,
            target: "≥ 0.9"))
        let steadyRate = (durable * 0.8).rounded()
        for fraction in [0.25, 0.8] {
            let rate = (durable * fraction).rounded()
            let latency = try bench.mqttLatency(rate: rate, seconds: latencySeconds)
            report.add(BenchResult(
                name: "MQTT publish-to-commit latency at \(Int(fraction * 100))% of the durable rate (\(Int(rate)) msg/s), p50",
                value: latency.p50Ms, unit: "ms",
                note: String(format: "p99 %.1f ms; publish time in the payload to the record's arrival at a Kafka consumer of the listener (committed records only)", latency.p99Ms)))
        }
        if crashSeconds > 0 {
            let settings = try Self.deployQueueSettings()
            let crash = try bench.mqttCrashRun(rate: steadyRate, seconds: crashSeconds, kills: 5, brokerSettings: settings)
            report.add(BenchResult(
                name: "MQTT at \(Int(steadyRate)) msg/s for \(crashSeconds) s, daemon killed -9 and restarted 5 times: readings lost",
                value: Double(crash.missing), unit: "of \(crash.published)", target: "0",
                note: "\(crash.duplicates) duplicates; broker: \(settings.joined(separator: ", "))"))
        }

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
