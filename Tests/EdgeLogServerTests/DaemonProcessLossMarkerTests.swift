import Foundation
import Testing

/// Loss markers (issue 13) from the real daemon: what drop-oldest deletes and what recovery
/// cuts off are each reported in `_edgelog.loss`, in /v1/status, `edgelog status` and
/// /metrics. (Negative control: before the LossRecorder existed these tests fail at the first
/// read of `_edgelog.loss`, a 404.)
@Suite(.serialized, .enabled(if: ProcessInfo.processInfo.environment["EDGELOG_IT"] == "1"))
struct DaemonProcessLossMarkerTests {
    @Test func dropOldestAndRecoveryCutsLeaveMarkers() async throws {
        let daemon = try DaemonProcess(extraConfig: """
            [storage]
            segment_bytes = 8192
            disk_budget_bytes = 131072
            overflow = "drop-oldest"

            [[topics]]
            name = "t"
            partitions = 1
            codec = "none"
            """)
        defer { daemon.remove() }
        try await daemon.start()
        let padding = String(repeating: "p", count: 80)
        for start in stride(from: 0, to: 4000, by: 500) {
            let lines = (start..<(start + 500)).map { #"{"value":"r\#($0)-\#(padding)"}"# }
            let (status, body) = try await daemon.request(
                .POST, "/v1/topics/t/records", contentType: "application/x-ndjson", body: lines.joined(separator: "\n"))
            #expect(status == 200, "ingest: \(body)")
        }
        let logStart = try await Self.partition(daemon, "t")["log_start_offset"] as? Int ?? 0
        #expect(logStart > 0, "the budget made drop-oldest delete segments")

        // Every deleted offset of `t` is in a marker, once: together they cover [0, log start).
        var markers: [[String: Any]] = []
        try await mqttEventually("markers for every deleted offset") {
            markers = try await daemon.lossMarkers().filter { $0["reason"] as? String == "drop-oldest" && $0["topic"] as? String == "t" }
            return (markers.last?["last_offset"] as? Int).map { $0 + 1 } == logStart
        }
        var next = 0
        for marker in markers {
            #expect(marker["partition"] as? Int == 0 && marker["first_offset"] as? Int == next, "\(markers)")
            #expect(marker["count"] as? Int == (marker["last_offset"] as? Int ?? 0) - next + 1)
            #expect((marker["from_ms"] as? Int ?? 0) > 0 && (marker["to_ms"] as? Int ?? 0) >= (marker["from_ms"] as? Int ?? 0))
            #expect((marker["detail"] as? String ?? "").contains("drop-oldest"))
            next = (marker["last_offset"] as? Int ?? 0) + 1
        }
        let (_, metrics) = try await daemon.request(.GET, "/metrics")
        #expect(Self.metric(metrics, #"edgelog_lost_records_total{reason="drop-oldest"}"#) >= logStart, "\(metrics)")
        let (_, status, _) = try DaemonProcess.cli(["status", "--server", daemon.baseURL])
        #expect(status.contains("LOST since start: drop-oldest"), "\(status)")
        let end = try await Self.partition(daemon, "t")["log_end_offset"] as? Int ?? 0
        #expect(try await daemon.stop() == 0)

        // Garbage after the last batch (a torn write): recovery cuts it and says from which offset.
        let partitionDirectory = daemon.dataDirectory + "/t-0"
        let active = try #require(try FileManager.default.contentsOfDirectory(atPath: partitionDirectory).filter { $0.hasSuffix(".log") }.max())
        let handle = try #require(FileHandle(forWritingAtPath: partitionDirectory + "/" + active))
        handle.seekToEndOfFile()
        handle.write(Data(repeating: 0x5A, count: 300))
        try handle.close()
        try await daemon.start()
        var cut: [String: Any]? = nil
        try await mqttEventually("a recovery marker") {
            cut = try await daemon.lossMarkers().first { $0["reason"] as? String == "recovery-truncated" }
            return cut != nil
        }
        #expect(cut?["topic"] as? String == "t" && cut?["partition"] as? Int == 0)
        #expect(cut?["first_offset"] as? Int == end, "\(String(describing: cut))")
        #expect((cut?["detail"] as? String ?? "").contains("300 bytes"))
        let (_, restarted, _) = try DaemonProcess.cli(["status", "--server", daemon.baseURL])
        #expect(restarted.contains("recovery-truncated"), "\(restarted)")
        #expect(try await daemon.stop() == 0)
    }

    static func partition(_ daemon: DaemonProcess, _ topic: String) async throws -> [String: Any] {
        let (_, body) = try await daemon.request(.GET, "/v1/topics/\(topic)")
        let json = try JSONSerialization.jsonObject(with: Data(body.utf8)) as? [String: Any]
        return (json?["partitions"] as? [[String: Any]])?.first ?? [:]
    }

    static func metric(_ text: String, _ name: String) -> Int {
        let line = text.split(separator: "\n").first { $0.hasPrefix(name + " ") }
        return line.flatMap { $0.split(separator: " ").last }.flatMap { Int(Double($0) ?? -1) } ?? -1
    }
}

extension DaemonProcess {
    /// The loss markers in `_edgelog.loss`, decoded.
    func lossMarkers() async throws -> [[String: Any]] {
        // The topic exists once the first marker has been written.
        guard try await request(.GET, "/v1/topics/_edgelog.loss").0 == 200 else { return [] }
        return try await recordValues("_edgelog.loss").map {
            try JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] ?? [:]
        }
    }
}
