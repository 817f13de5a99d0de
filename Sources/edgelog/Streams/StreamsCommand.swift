import ArgumentParser
import EdgeLogCore
import EdgeLogStreams
import Foundation
import NIOCore

/// `edgelog streams ...`: stream processors on the daemon (`/v1/processors`), and `test`, which
/// runs a query over a fixture on virtual time without a daemon.
struct StreamsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "streams", abstract: "Stream processors: SQL queries from topics to topics, exactly once.",
        subcommands: [
            StreamsListCommand.self, StreamsCreateCommand.self, StreamsDescribeCommand.self, StreamsDropCommand.self,
            StreamsTestCommand.self,
        ],
        defaultSubcommand: StreamsListCommand.self)

    /// The query itself, or `@file` for a file holding it.
    static func query(_ argument: String) throws -> String {
        guard argument.hasPrefix("@") else { return argument }
        let path = String(argument.dropFirst())
        guard let data = FileManager.default.contents(atPath: path) else { throw ValidationError("cannot read \(path)") }
        return String(decoding: data, as: UTF8.self)
    }
}

struct StreamsListCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "list", abstract: "Every processor with its state.")
    @OptionGroup var server: ServerOptions
    @Flag(help: "Print the daemon's JSON answer as it is.") var json = false

    func run() async throws {
        let answer = try await ConnectCommand.withClient(server) { try await $0.call(.GET, "/v1/processors") }
        if json { return try ConnectCommand.printJSON(answer) }
        let processors = answer as? [[String: Any]] ?? []
        guard !processors.isEmpty else { return print("no processors") }
        print(Format.table(
            ["NAME", "STATE", "DEFINED IN", "INPUTS", "OUTPUT", "IN", "OUT", "LATE", "LAG", "KEYS", "LAST ERROR"],
            processors.map { processor in
                let metrics = processor["metrics"] as? [String: Any] ?? [:]
                return [
                    processor["name"] as? String ?? "", processor["state"] as? String ?? "", processor["defined_in"] as? String ?? "",
                    (processor["inputs"] as? [String] ?? []).joined(separator: ","), processor["output_topic"] as? String ?? "",
                    "\(metrics.int("records_in"))", "\(metrics.int("records_out"))", "\(metrics.int("late"))",
                    "\(processor.int("lag_records"))", "\(metrics.int("keys"))", processor["last_error"] as? String ?? "",
                ]
            }))
    }
}

struct StreamsCreateCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "create", abstract: "Create and start a processor: edgelog streams create \"CREATE STREAM name AS SELECT ...\" (or @file.sql).")
    @OptionGroup var server: ServerOptions
    @Argument(help: "The query, or @file holding it.") var query: String

    func run() async throws {
        let text = try StreamsCommand.query(query)
        // Refused here, before the daemon sees it, with the planner's own message.
        do { _ = try ProcessorPlan.make(text) } catch {
            FileHandle.standardError.write(Data("invalid query: \(error)\n".utf8))
            throw ExitCode(1)
        }
        let body = try JSONSerialization.data(withJSONObject: ["query": text])
        let answer = try await ConnectCommand.withClient(server) {
            try await $0.call(.POST, "/v1/processors", contentType: "application/json", body: ByteBuffer(bytes: body))
        }
        let status = answer as? [String: Any] ?? [:]
        print("created processor \(status["name"] as? String ?? "?"): \(status["state"] as? String ?? "?"), output to \(status["output_topic"] as? String ?? "?")")
    }
}

struct StreamsDescribeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "describe", abstract: "A processor's query, positions, metrics, commits and last recovery.")
    @OptionGroup var server: ServerOptions
    @Argument(help: "The processor's name.") var name: String
    @Flag(help: "Print the daemon's JSON answer as it is.") var json = false

    func run() async throws {
        let answer = try await ConnectCommand.withClient(server) { try await $0.call(.GET, "/v1/processors/\(ConnectCommand.path(name))") }
        if json { return try ConnectCommand.printJSON(answer) }
        let status = answer as? [String: Any] ?? [:]
        let metrics = status["metrics"] as? [String: Any] ?? [:]
        let recovery = status["recovery"] as? [String: Any] ?? [:]
        print("\(status["name"] as? String ?? name): \(status["state"] as? String ?? "?") (defined in \(status["defined_in"] as? String ?? "?"))")
        print((status["query"] as? String ?? "").trimmingCharacters(in: .whitespacesAndNewlines))
        if let error = status["last_error"] as? String { print("last error: \(error)") }
        print("")
        print(Format.table(
            ["INPUT", "NEXT OFFSET", "END", "LAG"],
            (status["positions"] as? [[String: Any]] ?? []).map { position in
                let next = position.int("next_offset")
                let end = position.int("end_offset")
                return ["\(position["topic"] as? String ?? "")-\(position.int("partition"))", "\(next)", "\(end)", "\(max(0, end - next))"]
            }))
        print("")
        let watermark = (metrics["watermark_ms"] as? NSNumber).map { Date(timeIntervalSince1970: $0.doubleValue / 1000).ISO8601Format() } ?? "none yet"
        print("records in \(metrics.int("records_in")), out \(metrics.int("records_out")), filtered \(metrics.int("filtered")), late \(metrics.int("late")) (dropped \(metrics.int("late_dropped")), aside \(metrics.int("late_to_side_topic")), updates \(metrics.int("late_updates"))), dead-lettered \(metrics.int("dead_lettered")), deduplicated \(metrics.int("deduplicated")), throttled \(metrics.int("throttled")), deadbanded \(metrics.int("deadbanded"))")
        print("state: \(metrics.int("keys")) keys, \(metrics.int("open_windows")) open windows, \(metrics.int("state_bytes")) bytes (at most about \(metrics.int("estimated_max_state_bytes")) by the planner's estimate); evictions \(metrics.int("evictions")), new keys dropped \(metrics.int("dropped_new_keys")), pauses \(metrics.int("pauses"))")
        print("watermark: \(watermark)")
        print("commits \(status.int("commits")) (last \(status["last_commit_ms"] as? NSNumber ?? 0) ms), snapshots \(status.int("snapshots")) (last \(status.int("last_snapshot_bytes")) bytes)")
        print("last recovery: \(recovery.int("commits_replayed")) commits replayed, \(recovery.int("outputs_restored")) outputs restored, \(recovery["ms"] as? NSNumber ?? 0) ms, \(recovery.int("replay_mismatches")) mismatches")
    }
}

struct StreamsDropCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "drop", abstract: "Stop a processor made through the API and forget it (its output topics stay).")
    @OptionGroup var server: ServerOptions
    @Argument(help: "The processor's name.") var name: String

    func run() async throws {
        _ = try await ConnectCommand.withClient(server) { try await $0.call(.DELETE, "/v1/processors/\(ConnectCommand.path(name))") }
        print("dropped processor \(name)")
    }
}

/// Runs without a daemon: deterministic, on virtual time, the same engine the daemon runs.
struct StreamsTestCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "test",
        abstract: "Run a query over an NDJSON fixture on virtual time; with --expect, compare and exit 1 on any difference.",
        discussion: """
            Fixture lines: {"key": "dev-1", "value": {...}, "timestamp": ms, "topic": "t", "partition": 0, "headers": {...}};
            control lines {"wall_clock": ms} and {"idle": true}. At the end every window closes (--no-close-at-end to keep them open).
            """)

    @Argument(help: "The query, or @file holding it.") var query: String
    @Option(help: "The input records (NDJSON).") var input: String
    @Option(help: "The expected output (NDJSON): compared field by field, in order.") var expect: String?
    @Flag(inversion: .prefixedNo, help: "Close every window at the end of the input.") var closeAtEnd = true

    func run() throws {
        let text = try StreamsCommand.query(query)
        let plan: ProcessorPlan
        do { plan = try ProcessorPlan.make(text) } catch {
            FileHandle.standardError.write(Data("invalid query: \(error)\n".utf8))
            throw ExitCode(1)
        }
        guard let fixture = FileManager.default.contents(atPath: input) else { throw ValidationError("cannot read \(input)") }
        let result: VirtualTimeRun.Result
        do { result = try VirtualTimeRun(plan: plan, closeAtEnd: closeAtEnd).run(fixture: String(decoding: fixture, as: UTF8.self)) } catch {
            FileHandle.standardError.write(Data("\(input): \(error)\n".utf8))
            throw ExitCode(1)
        }
        guard let expect else {
            for line in result.lines { print(line) }
            return
        }
        guard let expected = FileManager.default.contents(atPath: expect) else { throw ValidationError("cannot read \(expect)") }
        let differences = VirtualTimeRun.differences(actual: result.lines, expected: String(decoding: expected, as: UTF8.self))
        if differences.isEmpty {
            print("OK: \(result.lines.count) records as expected (\(result.metrics.recordsIn) in, \(result.metrics.late) late, \(result.metrics.deadLettered) dead-lettered)")
            return
        }
        for difference in differences { print(difference) }
        FileHandle.standardError.write(Data("\(differences.count) differences\n".utf8))
        throw ExitCode(1)
    }
}
