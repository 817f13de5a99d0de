import ArgumentParser
import Foundation

/// `edgelog status`: what a running daemon holds.
struct StatusCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "status", abstract: "Show a running daemon's topics, partitions, offsets and disk use.")

    @OptionGroup var server: ServerOptions

    func run() async throws {
        let client = DaemonClient(options: server)
        defer { Task { await client.shutdown() } }
        let status = try await client.call(.GET, "/v1/status") as? [String: Any] ?? [:]
        let disk = status["disk"] as? [String: Any] ?? [:]
        print("edgelog at \(server.server): \(status["phase"] ?? "?"), up \(status["uptime_seconds"] ?? 0) s")
        var diskLine = "disk: \(Format.bytes(disk.int("used_bytes"))) used in \(disk["data_directory"] ?? "?")"
        if disk["budget_bytes"] != nil { diskLine += " of a \(Format.bytes(disk.int("budget_bytes"))) budget" }
        print(diskLine)
        if let ingest = status["ingest"] as? [String: Any] {
            print("ingest: " + ingest.keys.sorted().map { "\($0) \(ingest[$0] ?? 0) records/s" }.joined(separator: ", "))
        }
        if let connectors = status["connectors"] as? [[String: Any]], !connectors.isEmpty {
            // "connectors: http RUNNING, plant FAILED (cannot reach ...)"
            print("connectors: " + connectors.map { connector in
                var part = "\(connector["name"] ?? "?") \(connector["state"] ?? "?")"
                if let error = connector["error"] as? String { part += " (\(error))" }
                return part
            }.joined(separator: ", "))
        }
        for broker in status["mqtt"] as? [[String: Any]] ?? [] {
            print(Self.mqttLine(broker))
        }
        for upstream in status["replication"] as? [[String: Any]] ?? [] {
            var line = "replication to \(upstream["name"] ?? "?"): "
                + ((upstream["in_sync"] as? Bool ?? false) ? "in sync" : "NOT in sync") + ", lag \(upstream.int("lag_records")) records"
            if let error = upstream["last_error"] as? String { line += " (last error: \(error))" }
            print(line)
        }
        if let loss = status["loss"] as? [String: Any], !loss.isEmpty {
            let parts = loss.keys.sorted().map { reason -> String in
                let totals = loss[reason] as? [String: Any] ?? [:]
                return "\(reason) \(totals.int("records")) records (\(totals.int("markers")) markers)"
            }
            print("LOST since start: " + parts.joined(separator: ", ") + "; markers are in _edgelog.loss")
        } else if status["loss"] != nil {
            print("lost since start: nothing")
        }
        print("")
        print(Format.table(
            ["TOPIC", "PARTITION", "START", "END", "RECORDS", "SIZE"],
            (status["topics"] as? [[String: Any]] ?? []).flatMap { topic in
                (topic["partitions"] as? [[String: Any]] ?? []).map { partition in
                    [
                        topic["name"] as? String ?? "", "\(partition.int("partition"))", "\(partition.int("log_start_offset"))",
                        "\(partition.int("log_end_offset"))",
                        "\(partition.int("log_end_offset") - partition.int("log_start_offset"))",
                        Format.bytes(partition.int("size_bytes")),
                    ]
                }
            }))
    }
}

extension StatusCommand {
    /// "mqtt local (127.0.0.1:1883, ack durable): 1/1 connected, 1200 stored, ...; broker: 0 dropped, ..."
    static func mqttLine(_ broker: [String: Any]) -> String {
        var line = "mqtt \(broker["name"] ?? "?") (\(broker["broker"] ?? "?"), ack \(broker["ack"] ?? "?")): "
            + "\(broker.int("connections_ready"))/\(broker.int("connections")) connected, \(broker.int("stored")) stored, "
            + "\(broker.int("unrouted")) unrouted, \(broker.int("failed")) failed"
        guard let counters = broker["broker_counters"] as? [String: Any] else { return line }
        var parts: [String] = []
        if counters["dropped_messages"] != nil { parts.append("\(counters.int("dropped_messages")) dropped") }
        if counters["stored_messages"] != nil { parts.append("\(counters.int("stored_messages")) stored") }
        if counters["connected_clients"] != nil { parts.append("\(counters.int("connected_clients")) clients") }
        line += "; broker: " + (parts.isEmpty ? "no $SYS counters seen (yet)" : parts.joined(separator: ", "))
        let seen = counters.int("drops_seen")
        if seen > 0 {
            line += "\n  WARNING: the broker dropped \(seen) messages since edgelog has watched it; raise max_queued_messages"
        }
        return line
    }
}

enum Format {
    static func bytes(_ value: Int64) -> String {
        let units = ["B", "KiB", "MiB", "GiB", "TiB"]
        var amount = Double(value)
        var unit = 0
        while amount >= 1024 && unit < units.count - 1 {
            amount /= 1024
            unit += 1
        }
        return unit == 0 ? "\(value) B" : String(format: "%.1f ", amount) + units[unit]
    }

    static func table(_ header: [String], _ rows: [[String]]) -> String {
        var widths = header.map(\.count)
        for row in rows { for (index, cell) in row.enumerated() { widths[index] = max(widths[index], cell.count) } }
        func line(_ cells: [String]) -> String {
            cells.enumerated().map { $1.padding(toLength: widths[$0], withPad: " ", startingAt: 0) }.joined(separator: "  ")
        }
        return ([line(header)] + rows.map(line)).joined(separator: "\n")
    }
}
