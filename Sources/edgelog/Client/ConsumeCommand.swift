import ArgumentParser
import Foundation

/// `edgelog consume TOPIC`: records to stdout, one per line (like kafka-console-consumer).
struct ConsumeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "consume", abstract: "Print a topic's records, one value per line.",
        discussion: "Without --from-beginning or --offset it starts at the end. It exits at the end unless --follow.")

    @OptionGroup var server: ServerOptions

    @Argument(help: "The topic.")
    var topic: String

    @Flag(help: "Start at the oldest record.")
    var fromBeginning = false

    @Option(help: "Read only this partition.")
    var partition: Int32?

    @Option(help: "Start at this offset (needs --partition).")
    var offset: Int64?

    @Option(help: "Stop after this many records.")
    var maxMessages: Int?

    @Flag(help: "Keep waiting for new records.")
    var follow = false

    @Flag(help: "Print key<TAB>value.")
    var printKey = false

    @Flag(help: "Print partition, offset and timestamp before each record.")
    var printOffsets = false

    func validate() throws {
        if offset != nil && partition == nil { throw ValidationError("--offset needs --partition") }
    }

    func run() async throws {
        let client = DaemonClient(options: server)
        defer { Task { await client.shutdown() } }
        let description = try await client.call(.GET, "/v1/topics/\(topic)") as? [String: Any] ?? [:]
        let partitions = (description["partitions"] as? [[String: Any]] ?? []).filter {
            partition == nil || $0.int("partition") == Int64(partition!)
        }
        guard !partitions.isEmpty else { throw DaemonClient.Failure(description: "topic \(topic) has no partition \(partition ?? -1)") }
        var positions: [Int64: Int64] = [:]
        for entry in partitions {
            let start = offset ?? (fromBeginning ? entry.int("log_start_offset") : entry.int("log_end_offset"))
            positions[entry.int("partition")] = start
        }
        var printed = 0
        let output = FileHandle.standardOutput
        while true {
            var progressed = false
            for (partition, position) in positions.sorted(by: { $0.key < $1.key }) {
                let path = "/v1/topics/\(topic)/partitions/\(partition)/records?offset=\(position)&max_records=1000&format=binary"
                let answer = try await client.call(.GET, path) as? [String: Any] ?? [:]
                for record in answer["records"] as? [[String: Any]] ?? [] {
                    var line = Data()
                    if printOffsets {
                        line.append(Data("\(partition)\t\(record.int("offset"))\t\(record.int("timestamp"))\t".utf8))
                    }
                    if printKey {
                        line.append(Self.bytes(record["key_base64"]))
                        line.append(Data("\t".utf8))
                    }
                    line.append(Self.bytes(record["value_base64"]))
                    line.append(Data("\n".utf8))
                    output.write(line)
                    printed += 1
                    progressed = true
                    if let maxMessages, printed >= maxMessages { return }
                }
                positions[partition] = answer.int("next_offset")
            }
            if !progressed {
                guard follow else { return }
                try await Task.sleep(for: .milliseconds(200))
            }
        }
    }

    static func bytes(_ base64: Any?) -> Data {
        (base64 as? String).flatMap { Data(base64Encoded: $0) } ?? Data("null".utf8)
    }
}
