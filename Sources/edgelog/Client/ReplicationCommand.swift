import ArgumentParser
import Foundation

/// `edgelog replication status`: per upstream and partition, how far the upstream has
/// acknowledged, how far behind it is, and why when it is stuck.
struct ReplicationCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "replication", abstract: "Inspect replication to upstream clusters.",
        subcommands: [ReplicationStatusCommand.self], defaultSubcommand: ReplicationStatusCommand.self)
}

struct ReplicationStatusCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "status", abstract: "Checkpoint, lag and state of every upstream and partition.")

    @OptionGroup var server: ServerOptions

    @Flag(help: "Print the daemon's JSON answer as it is.")
    var json = false

    func run() async throws {
        let client = DaemonClient(options: server)
        defer { Task { await client.shutdown() } }
        let answer = try await client.call(.GET, "/v1/replication") as? [String: Any] ?? [:]
        if json {
            let data = try JSONSerialization.data(withJSONObject: answer, options: [.prettyPrinted, .sortedKeys])
            print(String(decoding: data, as: UTF8.self))
            return
        }
        let upstreams = answer["upstreams"] as? [[String: Any]] ?? []
        guard !upstreams.isEmpty else {
            print("no upstreams configured (add [[upstreams]] to the configuration)")
            return
        }
        for upstream in upstreams {
            let bootstrap = (upstream["bootstrap"] as? [String] ?? []).joined(separator: ",")
            let inSync = upstream["in_sync"] as? Bool ?? false
            print("upstream \(upstream["name"] ?? "?") (\(bootstrap))\((upstream["required"] as? Bool ?? false) ? ", required" : ""): "
                + (inSync ? "in sync" : "NOT in sync") + ", lag \(upstream.int("lag_records")) records")
            let partitions = upstream["partitions"] as? [[String: Any]] ?? []
            print(Format.table(
                ["TOPIC", "PARTITION", "UPSTREAM TOPIC", "CHECKPOINT", "END", "LAG", "LAG BYTES", "LAG S", "IN SYNC", "STATE"],
                partitions.map { partition in
                    [
                        partition["topic"] as? String ?? "", "\(partition.int("partition"))",
                        partition["upstream_topic"] as? String ?? "", "\(partition.int("checkpoint"))",
                        "\(partition.int("log_end_offset"))", "\(partition.int("lag_records"))",
                        Format.bytes(partition.int("lag_bytes")),
                        String(format: "%.1f", (partition["lag_seconds"] as? NSNumber)?.doubleValue ?? 0),
                        (partition["in_sync"] as? Bool ?? false) ? "yes" : "no", partition["state"] as? String ?? "",
                    ]
                }))
            for partition in partitions {
                if let error = partition["last_error"] as? String {
                    print("  \(partition["topic"] ?? "")-\(partition.int("partition")): last error: \(error)")
                }
            }
            print("")
        }
    }
}
