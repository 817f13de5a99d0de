import Foundation
import Synchronization
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// Power cuts, simulated: the daemon runs with `Tests/PowerCut/powercut.c` preloaded, which
/// remembers what each fsync made durable; a kill -9 and a restart then bring the data
/// directory back to exactly that (writes not fsynced are lost, so are directory entries whose
/// directory was not fsynced), as a power cut would. A kill -9 alone keeps the page cache and
/// so cannot show a missing fsync.
///
/// Each cycle streams QoS 1 readings through mosquitto (`ack = "durable"`) and HTTP produce
/// requests into the daemon, with segments small enough to roll many times, and cuts the
/// power in the middle. At the end every MQTT reading the publisher sent must be in the log
/// (one the broker saw acknowledged is never sent again, so a lost one would be missing) and
/// every record an HTTP answer acknowledged too. The same run with `flush = "interval"`
/// (acknowledged before the fsync) must lose records: the negative control that shows the
/// test can fail.
@Suite(
    .enabled(
        if: ProcessInfo.processInfo.environment["EDGELOG_IT"] == "1"
            && FileManager.default.isExecutableFile(atPath: DaemonProcess.binary)),
    .serialized)
struct PowerCutTests {
    static let cycles = 4
    static let readings = 30_000

    static func config(broker: MQTTTestBroker, flush: String) -> String {
        """
        [storage]
        flush = "\(flush)"
        flush_interval_ms = 600000
        # ~16 KiB segments: dozens of rolls per cycle.
        segment_bytes = 16384

        [[topics]]
        name = "sensors"
        partitions = 1

        [[topics]]
        name = "events"
        partitions = 1

        [[mqtt.brokers]]
        name = "local"
        port = \(broker.port)
        client_id = "edgelog-powercut"
        ack = "durable"
        keepalive_seconds = 10

        [[mqtt.routes]]
        filter = "sensors/{device}/#"
        topic = "sensors"
        key = "{device}"
        """
    }

    struct Outcome {
        var missingReadings: Int
        var missingEvents: Int
        var duplicateReadings: Int
        var acknowledgedEvents: Int
        var droppedBytesReports: [String]
    }

    @Test func withFlushAlwaysNothingAcknowledgedIsLost() async throws {
        let outcome = try await Self.run(flush: "always")
        #expect(outcome.missingReadings == 0, "\(outcome.missingReadings) MQTT readings lost")
        #expect(outcome.missingEvents == 0, "\(outcome.missingEvents) acknowledged HTTP records lost")
        #expect(outcome.acknowledgedEvents > 0)
        print("power cut, flush = always: \(outcome.duplicateReadings) duplicate readings; \(outcome.droppedBytesReports)")
    }

    /// Negative control: acknowledged before fsync, so the cuts lose acknowledged records.
    @Test func withFlushIntervalTheCutsLoseAcknowledgedRecords() async throws {
        let outcome = try await Self.run(flush: "interval")
        // Each check on its own: both the MQTT and the HTTP check can fail.
        #expect(outcome.missingReadings > 0, "the power cuts lost no MQTT reading: that check cannot fail")
        #expect(outcome.missingEvents > 0, "the power cuts lost no acknowledged HTTP record: that check cannot fail")
        print("power cut, flush = interval: \(outcome.missingReadings) readings and \(outcome.missingEvents) events lost")
    }

    static func run(flush: String) async throws -> Outcome {
        let library = try TestTool.powerCutLibrary()
        let broker = try MQTTTestBroker()
        let daemon = try DaemonProcess(extraConfig: config(broker: broker, flush: flush))
        defer { daemon.remove() }
        let state = daemon.directory + "/powercut-state"
        let report = daemon.directory + "/powercut-report.txt"
        try FileManager.default.createDirectory(atPath: daemon.dataDirectory, withIntermediateDirectories: true)
        daemon.environment = [
            "LD_PRELOAD": library, "POWERCUT_ROOT": daemon.dataDirectory, "POWERCUT_STATE": state,
            "POWERCUT_REPORT": report, "POWERCUT_EXE": "edgelog",
        ]
        let readings = (0..<Self.readings).map { "r\($0)" }
        var publisher: Process? = nil
        let acknowledged = AcknowledgedValues()
        for cycle in 0..<Self.cycles {
            try await daemon.start()
            if publisher == nil {
                try await mqttEventually("the subscription") { broker.log.contains("Sending SUBACK to edgelog-powercut") }
                publisher = try broker.startPublishing("sensors/device-1/reading", lines: readings)
            }
            let pubacksBefore = pubacks(broker)
            let producing = Task { await produce(daemon, cycle: cycle, acknowledged: acknowledged) }
            // Cut while both streams are flowing.
            try await mqttEventually("MQTT acknowledgements in cycle \(cycle)", timeout: .seconds(60)) {
                pubacks(broker) >= pubacksBefore + 1_000 || (publisher.map { !$0.isRunning } ?? false)
            }
            try await mqttEventually("HTTP acknowledgements in cycle \(cycle)", timeout: .seconds(60)) {
                acknowledged.values.withLock { $0.filter { $0.hasPrefix("h\(cycle)-") }.count } >= 100
            }
            try await daemon.stop(signal: SIGKILL)
            producing.cancel()
            await producing.value
        }
        await publisher?.exited()

        // The last boot applies the last cut; then the broker redelivers what was not acknowledged.
        try await daemon.start()
        try broker.publish("sensors/device-1/reading", "end")
        try await mqttEventually("the marker", timeout: .seconds(120)) { try await values(daemon, "sensors").last == "end" }
        let stored = try await values(daemon, "sensors")
        let events = Set(try await values(daemon, "events"))
        try await daemon.stop()
        let reports = ((try? String(contentsOfFile: report, encoding: .utf8)) ?? "").split(separator: "\n").map {
            String($0.split(separator: ";").last(where: { $0.contains("dropped") }) ?? "")
        }
        return Outcome(
            missingReadings: Set(readings).subtracting(stored).count,
            missingEvents: acknowledged.values.withLock { Set($0) }.subtracting(events).count,
            duplicateReadings: stored.count - Set(stored).count, acknowledgedEvents: acknowledged.values.withLock { $0.count },
            droppedBytesReports: reports)
    }

    /// Posts NDJSON requests of 10 records, one at a time, until cancelled or the daemon dies;
    /// records the values of every request answered 200 (committed).
    static func produce(_ daemon: DaemonProcess, cycle: Int, acknowledged: AcknowledgedValues) async {
        var request = 0
        while !Task.isCancelled && request < 100_000 {
            let values = (0..<10).map { "h\(cycle)-\(request * 10 + $0)" }
            let body = values.map { "{\"value\":\"\($0)\"}" }.joined(separator: "\n")
            request += 1
            guard let answer = try? await daemon.request(
                .POST, "/v1/topics/events/records", contentType: "application/x-ndjson", body: body)
            else { return }
            if answer.0 == 200 { acknowledged.values.withLock { $0 += values } }
        }
    }

    static func pubacks(_ broker: MQTTTestBroker) -> Int {
        broker.log.components(separatedBy: "Received PUBACK from edgelog-powercut").count - 1
    }

    /// Every value of partition 0 of `topic`, in offset order (JSON string values unquoted).
    static func values(_ daemon: DaemonProcess, _ topic: String) async throws -> [String] {
        try await daemon.recordValues(topic).map { text in
            text.hasPrefix("\"") && text.hasSuffix("\"") ? String(text.dropFirst().dropLast()) : text
        }
    }
}

/// Values whose HTTP produce request was answered 200, shared with the producing task.
final class AcknowledgedValues: Sendable {
    let values = Mutex<[String]>([])
}
