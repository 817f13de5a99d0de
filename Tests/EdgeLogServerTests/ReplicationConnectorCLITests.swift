import Foundation
import Testing

/// An upstream-sink connector managed with `edgelog connect` against the real daemon and a
/// real Tansu: loaded from a TOML file at run time, stopped (its checkpoint honoured), its
/// offsets read and refused while running, resumed, reconfigured from a JSON file while data
/// flows, and unloaded with its offsets dropped.
@Suite(
    .enabled(
        if: ProcessInfo.processInfo.environment["EDGELOG_IT"] == "1"
            && FileManager.default.isExecutableFile(atPath: DaemonProcess.binary) && TansuBroker.executable != nil),
    .serialized)
struct ReplicationConnectorCLITests {
    static func connect(_ daemon: DaemonProcess, _ arguments: [String]) throws -> (Int32, String, String) {
        try DaemonProcess.cli(["connect"] + arguments + ["--server", daemon.baseURL])
    }

    static func status(_ daemon: DaemonProcess) async throws -> [String: Any] {
        let (code, body) = try await daemon.request(.GET, "/connectors/central/status")
        guard code == 200 else { return [:] }
        return try JSONSerialization.jsonObject(with: Data(body.utf8)) as? [String: Any] ?? [:]
    }

    static func checkpoints(_ daemon: DaemonProcess) async throws -> Int {
        let (_, body) = try await daemon.request(.GET, "/connectors/central/offsets")
        let offsets = (try JSONSerialization.jsonObject(with: Data(body.utf8)) as? [String: Any])?["offsets"] as? [[String: Any]] ?? []
        return offsets.reduce(0) { $0 + (($1["offset"] as? [String: Any])?["kafka_offset"] as? Int ?? 0) }
    }

    @Test func anUpstreamLoadedStoppedResumedAndUnloadedWithTheCLI() async throws {
        let tansu = try TansuBroker()
        let daemon = try DaemonProcess(extraConfig: """
            [[topics]]
            name = "events"
            partitions = 2
            """)
        defer { daemon.remove() }
        try await daemon.start()
        try await ReplicationDaemonTests.ingest(daemon, start: 0, count: 100)

        let (pluginsCode, plugins, _) = try Self.connect(daemon, ["plugins"])
        #expect(pluginsCode == 0 && plugins.contains("upstream-sink"))
        let file = daemon.directory + "/central.toml"
        try """
            type = "upstream-sink"
            bootstrap = ["\(tansu.bootstrap)"]
            topic_template = "edge.{topic}"
            checkpoint_interval_ms = 100
            retry_backoff_ms = 50
            request_timeout_ms = 5000
            """.write(toFile: file, atomically: true, encoding: .utf8)
        let (loaded, loadedOut, loadedErr) = try Self.connect(daemon, ["load", "central", "-c", file])
        #expect(loaded == 0, "\(loadedOut) \(loadedErr)")

        var last: [String: Any] = [:]
        func caughtUp(_ records: Int) async throws -> Bool {
            last = try await Self.status(daemon)
            let metrics = last["metrics"] as? [String: Any] ?? [:]
            return metrics["lag_records"] as? Int == 0 && metrics["records_out"] as? Int == records
        }
        try await mqttEventually("100 records replicated, status \(last)") { try await caughtUp(100) }
        try await mqttEventually("RUNNING (after the start grace)") {
            (try await Self.status(daemon)["connector"] as? [String: Any])?["state"] as? String == "RUNNING"
        }
        let (_, statusText, _) = try Self.connect(daemon, ["status", "central"])
        #expect(statusText.contains("central (upstream-sink, defined in api): RUNNING"), "\(statusText)")
        #expect(try await readUpstream(bootstrap: tansu.bootstrap, topic: "edge.events", expect: 100, extraWait: 1).count == 100)

        // Offsets: shown while running, changed only when stopped.
        let (_, offsetsText, _) = try Self.connect(daemon, ["offsets", "central"])
        #expect(offsetsText.contains("kafka_topic=events") && offsetsText.contains("kafka_offset="), "\(offsetsText)")
        let (resetRunning, _, resetError) = try Self.connect(daemon, ["offsets", "central", "--reset"])
        #expect(resetRunning != 0 && resetError.contains("STOPPED"), "\(resetError)")

        // Stopped: nothing moves, and the checkpoint stays where it was.
        #expect(try Self.connect(daemon, ["stop", "central"]).0 == 0)
        try await mqttEventually("STOPPED") {
            (try await Self.status(daemon)["connector"] as? [String: Any])?["state"] as? String == "STOPPED"
        }
        try await ReplicationDaemonTests.ingest(daemon, start: 100, count: 50)
        #expect(try await Self.checkpoints(daemon) == 100)

        // Resumed from the checkpoint: the 50 new ones, nothing twice.
        #expect(try Self.connect(daemon, ["resume", "central"]).0 == 0)
        try await mqttEventually("150 checkpointed") { try await Self.checkpoints(daemon) == 150 }
        // Reconfigured from a file while it runs: a new task with the new settings, from the
        // checkpoint.
        let changed = daemon.directory + "/central.json"
        try """
            {"connector.class": "upstream-sink", "bootstrap": "\(tansu.bootstrap)", "topic_template": "edge.{topic}",
             "checkpoint_interval_ms": "200", "retry_backoff_ms": "50", "request_timeout_ms": "5000"}
            """.write(toFile: changed, atomically: true, encoding: .utf8)
        let (configured, _, configError) = try Self.connect(daemon, ["config", "central", "-c", changed])
        #expect(configured == 0, "\(configError)")
        let (_, shown, _) = try Self.connect(daemon, ["config", "central"])
        #expect(shown.contains(#""checkpoint_interval_ms" : "200""#), "\(shown)")
        try await ReplicationDaemonTests.ingest(daemon, start: 150, count: 50)
        try await mqttEventually("200 checkpointed") { try await Self.checkpoints(daemon) == 200 }
        let upstream = try await readUpstream(bootstrap: tansu.bootstrap, topic: "edge.events", expect: 200, extraWait: 1)
        let values = ReplicationDaemonTests.values(upstream)
        #expect(values.count == 200 && Set(values).count == 200, "no duplicates: the checkpoint was honoured")

        // Unload asks what to do with the offsets; without a terminal, it says how to answer.
        let (asked, _, askedError) = try Self.connect(daemon, ["unload", "central"])
        #expect(asked != 0 && askedError.contains("--drop-offsets"), "\(askedError)")
        #expect(try await daemon.request(.GET, "/connectors/central").0 == 200, "still there")
        let (unloaded, _, unloadError) = try Self.connect(daemon, ["unload", "central", "--drop-offsets"])
        #expect(unloaded == 0, "\(unloadError)")
        #expect(try await daemon.request(.GET, "/connectors/central").0 == 404)
        let leftovers = FileManager.default.enumerator(atPath: daemon.dataDirectory)?.compactMap { $0 as? String }
            .filter { $0.contains("replication-central") } ?? []
        #expect(leftovers.isEmpty, "checkpoints dropped: \(leftovers)")
        let (_, list, _) = try Self.connect(daemon, ["list"])
        #expect(list.contains("http") && !list.contains("central"))
    }
}
