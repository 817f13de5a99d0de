import ArgumentParser
import EdgeLogCore
import EdgeLogTOML
import Foundation
import NIOCore
import NIOHTTP1

/// `edgelog connect ...`: the Confluent CLI's connector verbs against the daemon's connector
/// API (`/connectors`, Kafka Connect's shape).
struct ConnectCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "connect", abstract: "Manage connectors: MQTT brokers, HTTP endpoints, upstreams.",
        subcommands: [
            ConnectListCommand.self, ConnectPluginsCommand.self, ConnectLoadCommand.self, ConnectUnloadCommand.self,
            ConnectConfigCommand.self, ConnectStatusCommand.self, ConnectPauseCommand.self, ConnectResumeCommand.self,
            ConnectStopCommand.self, ConnectRestartCommand.self, ConnectOffsetsCommand.self,
        ],
        defaultSubcommand: ConnectListCommand.self)

    /// Runs `body` with a client, printing the answer as JSON when asked.
    static func withClient<T>(_ server: ServerOptions, _ body: (DaemonClient) async throws -> T) async throws -> T {
        let client = DaemonClient(options: server)
        defer { Task { await client.shutdown() } }
        return try await body(client)
    }

    static func printJSON(_ value: Any) throws {
        let data = try JSONSerialization.data(withJSONObject: value, options: [.prettyPrinted, .sortedKeys])
        print(String(decoding: data, as: UTF8.self))
    }

    /// A connector's name in a URL path.
    static func path(_ name: String) -> String {
        name.addingPercentEncoding(withAllowedCharacters: .urlPathAllowed.subtracting(.init(charactersIn: "/"))) ?? name
    }

    /// Reads a connector's configuration from a TOML file (top-level keys, `type` among them)
    /// or a JSON file (the configuration object, or Kafka Connect's `{"name", "config"}`).
    static func readConfig(_ file: String) throws -> (name: String?, config: ConnectorConfig) {
        guard let data = FileManager.default.contents(atPath: file) else {
            throw ValidationError("cannot read \(file)")
        }
        if file.hasSuffix(".json") {
            struct Wrapped: Decodable {
                var name: String?
                var config: ConnectorConfig
            }
            if let wrapped = try? JSONDecoder().decode(Wrapped.self, from: data) { return (wrapped.name, wrapped.config) }
            do { return (nil, try JSONDecoder().decode(ConnectorConfig.self, from: data)) } catch {
                throw ValidationError("\(file): not a JSON object of connector settings: \(error)")
            }
        }
        do {
            let table = try TOMLParser.parse(bytes: Array(data))
            var config = ConnectorConfig(table, skipping: ["name"])
            if config["connector.class"] == nil, let type = config["type"] {
                config["type"] = nil
                config["connector.class"] = type
            }
            return (table["name"]?.string, config)
        } catch let error as TOMLParseError {
            throw ValidationError("\(file):\(error.line): \(error.message)")
        }
    }

    static func body(_ config: ConnectorConfig) throws -> ByteBuffer {
        ByteBuffer(bytes: try JSONEncoder().encode(config))
    }
}

struct ConnectorName: ParsableArguments {
    @Argument(help: "The connector's name.")
    var name: String
}

struct ConnectListCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "list", abstract: "Every connector with its state.")
    @OptionGroup var server: ServerOptions
    @Flag(help: "Print the daemon's JSON answer as it is.") var json = false

    func run() async throws {
        let answer = try await ConnectCommand.withClient(server) { try await $0.call(.GET, "/connectors?expand=status") }
        if json { return try ConnectCommand.printJSON(answer) }
        let connectors = (answer as? [String: Any] ?? [:]).sorted { $0.key < $1.key }
        guard !connectors.isEmpty else { return print("no connectors") }
        print(Format.table(
            ["NAME", "TYPE", "STATE", "DEFINED IN", "RECORDS IN", "RECORDS OUT", "RESTARTS", "LAST ERROR"],
            connectors.map { name, value in
                let status = (value as? [String: Any])?["status"] as? [String: Any] ?? [:]
                let metrics = status["metrics"] as? [String: Any] ?? [:]
                let state = (status["connector"] as? [String: Any])?["state"] as? String ?? "?"
                let error = (status["last_error"] as? [String: Any])?["message"] as? String ?? ""
                return [
                    name, status["connector_type"] as? String ?? "", state, status["defined_in"] as? String ?? "",
                    "\(metrics.int("records_in"))", "\(metrics.int("records_out"))", "\(status.int("restarts"))",
                    state == "FAILED" || state == "RESTARTING" ? error : "",
                ]
            }))
    }
}

struct ConnectPluginsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "plugins", abstract: "The connector types, or one type's configuration keys.")
    @OptionGroup var server: ServerOptions
    @Argument(help: "A type, to list its keys.") var type: String?
    @Flag(help: "Print the daemon's JSON answer as it is.") var json = false

    func run() async throws {
        let path = type.map { "/connector-plugins/\(ConnectCommand.path($0))/config" } ?? "/connector-plugins"
        let answer = try await ConnectCommand.withClient(server) { try await $0.call(.GET, path) }
        if json { return try ConnectCommand.printJSON(answer) }
        let rows = answer as? [[String: Any]] ?? []
        if type != nil {
            print(Format.table(
                ["KEY", "TYPE", "REQUIRED", "DEFAULT", "DESCRIPTION"],
                rows.map {
                    [
                        $0["name"] as? String ?? "", $0["type"] as? String ?? "", ($0["required"] as? Bool ?? false) ? "yes" : "",
                        $0["default_value"] as? String ?? "", $0["documentation"] as? String ?? "",
                    ]
                }))
        } else {
            print(Format.table(
                ["TYPE", "KIND", "SUMMARY"],
                rows.map { [$0["class"] as? String ?? "", $0["type"] as? String ?? "", $0["summary"] as? String ?? ""] }))
        }
    }
}

struct ConnectLoadCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "load", abstract: "Create a connector from a TOML or JSON file (its `type` and keys).")
    @OptionGroup var server: ServerOptions
    @Argument(help: "The connector's name (or the file's `name`).") var name: String?
    @Option(name: [.short, .customLong("config-file")], help: "The configuration: file.toml or file.json.") var config: String

    func run() async throws {
        let (fileName, settings) = try ConnectCommand.readConfig(config)
        guard let connector = name ?? fileName else { throw ValidationError("name the connector (or set name in \(config))") }
        let body = try JSONSerialization.data(
            withJSONObject: ["name": connector, "config": try JSONSerialization.jsonObject(with: try JSONEncoder().encode(settings))])
        _ = try await ConnectCommand.withClient(server) {
            try await $0.call(.POST, "/connectors", contentType: "application/json", body: ByteBuffer(bytes: body))
        }
        print("created connector \(connector)")
    }
}

struct ConnectUnloadCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "unload", abstract: "Delete a connector made through the API, keeping or dropping its offsets.")
    @OptionGroup var server: ServerOptions
    @OptionGroup var connector: ConnectorName
    @Flag(help: "Keep the offsets: a connector made again with this name resumes from them.") var keepOffsets = false
    @Flag(help: "Drop the offsets (an upstream-sink's checkpoints).") var dropOffsets = false

    func run() async throws {
        guard !(keepOffsets && dropOffsets) else { throw ValidationError("--keep-offsets or --drop-offsets, not both") }
        var choice = keepOffsets ? "keep" : dropOffsets ? "drop" : nil
        try await ConnectCommand.withClient(server) { client in
            let path = "/connectors/\(ConnectCommand.path(connector.name))"
            do {
                _ = try await client.call(.DELETE, path + (choice.map { "?offsets=\($0)" } ?? ""))
            } catch let failure as DaemonClient.Failure where choice == nil && failure.description.contains("offsets=keep") {
                // The daemon asks: on a terminal, so do we.
                guard isatty(STDIN_FILENO) == 1 else { throw ValidationError("\(failure.description); say --keep-offsets or --drop-offsets") }
                print("\(connector.name) has offsets. Keep them (k) or drop them (d)? ", terminator: "")
                switch readLine()?.lowercased() {
                case "k", "keep": choice = "keep"
                case "d", "drop": choice = "drop"
                default: throw ValidationError("nothing deleted")
                }
                _ = try await client.call(.DELETE, path + "?offsets=\(choice!)")
            }
        }
        print("deleted connector \(connector.name)" + (choice.map { " (offsets: \($0))" } ?? ""))
    }
}

struct ConnectConfigCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "config", abstract: "Show a connector's configuration, or replace it from a file.")
    @OptionGroup var server: ServerOptions
    @OptionGroup var connector: ConnectorName
    @Option(name: [.short, .customLong("config-file")], help: "A new configuration: file.toml or file.json.") var config: String?

    func run() async throws {
        let path = "/connectors/\(ConnectCommand.path(connector.name))/config"
        if let config {
            let (_, settings) = try ConnectCommand.readConfig(config)
            _ = try await ConnectCommand.withClient(server) {
                try await $0.call(.PUT, path, contentType: "application/json", body: try ConnectCommand.body(settings))
            }
            print("configured connector \(connector.name)")
        } else {
            try ConnectCommand.printJSON(try await ConnectCommand.withClient(server) { try await $0.call(.GET, path) })
        }
    }
}

struct ConnectStatusCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "status", abstract: "A connector's state, last error, retries and metrics (all: as list).")
    @OptionGroup var server: ServerOptions
    @Argument(help: "The connector's name.") var name: String?
    @Flag(help: "Print the daemon's JSON answer as it is.") var json = false

    func run() async throws {
        guard let name else {
            var list = ConnectListCommand()
            list.server = server
            list.json = json
            return try await list.run()
        }
        let answer = try await ConnectCommand.withClient(server) {
            try await $0.call(.GET, "/connectors/\(ConnectCommand.path(name))/status") as? [String: Any] ?? [:]
        }
        if json { return try ConnectCommand.printJSON(answer) }
        let state = (answer["connector"] as? [String: Any])?["state"] as? String ?? "?"
        print("\(name) (\(answer["connector_type"] ?? "?"), defined in \(answer["defined_in"] ?? "?")): \(state)")
        if let error = answer["last_error"] as? [String: Any] {
            print("  last error: \(error["message"] ?? "") at \(Self.time(error["at_ms"]))")
        }
        if answer["last_success_at_ms"] != nil { print("  last success: \(Self.time(answer["last_success_at_ms"]))") }
        print("  restarts: \(answer.int("restarts")), retries: \(answer.int("retries"))")
        if answer["next_retry_at_ms"] != nil { print("  next retry: \(Self.time(answer["next_retry_at_ms"]))") }
        let metrics = answer["metrics"] as? [String: Any] ?? [:]
        print("  records in \(metrics.int("records_in")) (\(Format.bytes(metrics.int("bytes_in")))), out \(metrics.int("records_out")) (\(Format.bytes(metrics.int("bytes_out"))))")
        if metrics["lag_records"] != nil {
            print("  lag: \(metrics.int("lag_records")) records, \(Format.bytes(metrics.int("lag_bytes"))), \(metrics["lag_seconds"] ?? 0) s")
        }
    }

    static func time(_ value: Any?) -> String {
        guard let ms = (value as? NSNumber)?.int64Value else { return "?" }
        return ISO8601DateFormatter().string(from: Date(timeIntervalSince1970: Double(ms) / 1000))
    }
}

/// pause, resume, stop, restart: one request each.
protocol ConnectActionCommand: AsyncParsableCommand {
    var server: ServerOptions { get }
    var connector: ConnectorName { get }
    static var method: HTTPMethod { get }
    static var verb: String { get }
    static var done: String { get }
}

extension ConnectActionCommand {
    func run() async throws {
        let path = "/connectors/\(ConnectCommand.path(connector.name))/\(Self.verb)"
        _ = try await ConnectCommand.withClient(server) { try await $0.call(Self.method, path) }
        print("\(Self.done) connector \(connector.name)")
    }
}

struct ConnectPauseCommand: ConnectActionCommand {
    static let configuration = CommandConfiguration(commandName: "pause", abstract: "Pause a connector (its state survives restarts).")
    @OptionGroup var server: ServerOptions
    @OptionGroup var connector: ConnectorName
    static let method = HTTPMethod.PUT, verb = "pause", done = "paused"
}

struct ConnectResumeCommand: ConnectActionCommand {
    static let configuration = CommandConfiguration(commandName: "resume", abstract: "Resume a paused or stopped connector.")
    @OptionGroup var server: ServerOptions
    @OptionGroup var connector: ConnectorName
    static let method = HTTPMethod.PUT, verb = "resume", done = "resumed"
}

struct ConnectStopCommand: ConnectActionCommand {
    static let configuration = CommandConfiguration(commandName: "stop", abstract: "Stop a connector (its offsets can then be changed).")
    @OptionGroup var server: ServerOptions
    @OptionGroup var connector: ConnectorName
    static let method = HTTPMethod.PUT, verb = "stop", done = "stopped"
}

struct ConnectRestartCommand: ConnectActionCommand {
    static let configuration = CommandConfiguration(commandName: "restart", abstract: "Restart a connector now (the backoff starts over).")
    @OptionGroup var server: ServerOptions
    @OptionGroup var connector: ConnectorName
    static let method = HTTPMethod.POST, verb = "restart", done = "restarted"
}

struct ConnectOffsetsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "offsets", abstract: "A connector's offsets; --reset drops them (the connector must be stopped).")
    @OptionGroup var server: ServerOptions
    @OptionGroup var connector: ConnectorName
    @Flag(help: "Reset the offsets (an upstream-sink then replicates every partition from its start).") var reset = false
    @Flag(help: "Print the daemon's JSON answer as it is.") var json = false

    func run() async throws {
        let path = "/connectors/\(ConnectCommand.path(connector.name))/offsets"
        if reset {
            let answer = try await ConnectCommand.withClient(server) { try await $0.call(.DELETE, path) as? [String: Any] ?? [:] }
            return print(answer["message"] as? String ?? "reset")
        }
        let answer = try await ConnectCommand.withClient(server) { try await $0.call(.GET, path) }
        if json { return try ConnectCommand.printJSON(answer) }
        let offsets = (answer as? [String: Any])?["offsets"] as? [[String: Any]] ?? []
        guard !offsets.isEmpty else { return print("\(connector.name) has no offsets") }
        func describe(_ value: Any?) -> String {
            ((value as? [String: Any]) ?? [:]).sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " ")
        }
        print(Format.table(["PARTITION", "OFFSET"], offsets.map { [describe($0["partition"]), describe($0["offset"])] }))
    }
}
