import ArgumentParser
import Foundation
import NIOCore

/// `edgelog produce TOPIC`: lines from stdin become records (like kafka-console-producer).
struct ProduceCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "produce", abstract: "Send lines from standard input to a topic, one record per line.")

    @OptionGroup var server: ServerOptions

    @Argument(help: "The topic.")
    var topic: String

    @Option(help: "Split each line at the first occurrence of this separator into key and value.")
    var keySeparator: String?

    @Option(help: "Send to this partition instead of the key's.")
    var partition: Int32?

    @Option(help: "Lines per request.")
    var batchSize = 500

    func run() async throws {
        let client = DaemonClient(options: server)
        defer { Task { await client.shutdown() } }
        var batch: [(key: String?, value: String)] = []
        var total = 0
        func send() async throws {
            guard !batch.isEmpty else { return }
            var body = "["
            for (index, line) in batch.enumerated() {
                if index > 0 { body += "," }
                body += "{\"value\":\"\(Data(line.value.utf8).base64EncodedString())\""
                if let key = line.key { body += ",\"key\":\"\(Data(key.utf8).base64EncodedString())\"" }
                if let partition { body += ",\"partition\":\(partition)" }
                body += "}"
            }
            body += "]"
            let answer = try await client.call(
                .POST, "/v1/topics/\(topic)/records", contentType: "application/vnd.kafka.binary.v2+json",
                body: ByteBuffer(string: body)) as? [String: Any]
            total += (answer?["offsets"] as? [Any])?.count ?? 0
            batch.removeAll(keepingCapacity: true)
        }
        while let line = readLine(strippingNewline: true) {
            if let separator = keySeparator, let range = line.range(of: separator) {
                batch.append((String(line[..<range.lowerBound]), String(line[range.upperBound...])))
            } else {
                batch.append((nil, line))
            }
            if batch.count >= batchSize { try await send() }
        }
        try await send()
        FileHandle.standardError.write(Data("produced \(total) records to \(topic)\n".utf8))
    }
}
