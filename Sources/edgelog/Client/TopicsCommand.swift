import ArgumentParser
import Foundation
import NIOCore

/// `edgelog topics list|describe|create|delete`.
struct TopicsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "topics", abstract: "List, describe, create and delete topics of a running daemon.",
        subcommands: [List.self, Describe.self, Create.self, Delete.self])

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List topics.")
        @OptionGroup var server: ServerOptions

        func run() async throws {
            let client = DaemonClient(options: server)
            defer { Task { await client.shutdown() } }
            let answer = try await client.call(.GET, "/v1/topics") as? [String: Any] ?? [:]
            for topic in answer["topics"] as? [[String: Any]] ?? [] {
                print("\(topic["name"] ?? "")\t\(topic.int("partitions")) partitions")
            }
        }
    }

    struct Describe: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Show a topic's settings and partitions.")
        @OptionGroup var server: ServerOptions
        @Argument var topic: String

        func run() async throws {
            let client = DaemonClient(options: server)
            defer { Task { await client.shutdown() } }
            let answer = try await client.call(.GET, "/v1/topics/\(topic)") as? [String: Any] ?? [:]
            let config = answer["config"] as? [String: Any] ?? [:]
            print("topic \(topic): " + config.keys.sorted().map { "\($0)=\(config[$0]!)" }.joined(separator: " "))
            print(Format.table(
                ["PARTITION", "START", "END", "SIZE", "SEGMENTS"],
                (answer["partitions"] as? [[String: Any]] ?? []).map {
                    ["\($0.int("partition"))", "\($0.int("log_start_offset"))", "\($0.int("log_end_offset"))",
                     Format.bytes($0.int("size_bytes")), "\($0.int("segments"))"]
                }))
        }
    }

    struct Create: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Create a topic.")
        @OptionGroup var server: ServerOptions
        @Argument var topic: String
        @Option var partitions: Int32 = 3

        func run() async throws {
            let client = DaemonClient(options: server)
            defer { Task { await client.shutdown() } }
            _ = try await client.call(
                .POST, "/v1/topics", contentType: "application/json",
                body: ByteBuffer(string: "{\"name\":\"\(topic)\",\"partitions\":\(partitions)}"))
            print("created \(topic) with \(partitions) partitions")
        }
    }

    struct Delete: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Delete a topic and its data.")
        @OptionGroup var server: ServerOptions
        @Argument var topic: String

        func run() async throws {
            let client = DaemonClient(options: server)
            defer { Task { await client.shutdown() } }
            _ = try await client.call(.DELETE, "/v1/topics/\(topic)")
            print("deleted \(topic)")
        }
    }
}
