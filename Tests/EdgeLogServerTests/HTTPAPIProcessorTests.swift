import EdgeLogStorage
import EdgeLogStreams
import Foundation
import Hummingbird
import HummingbirdTesting
import Logging
import NIOCore
import Testing
@testable import EdgeLogCore
@testable import EdgeLogHTTP

/// The processor API (`/v1/processors`) with a real runtime over a real log: create, list,
/// describe, drop, test, and every refusal with its status and code.
@Suite struct HTTPAPIProcessorTests {
    static let jsonType: HTTPFields = [.contentType: "application/json"]

    static func withAPI(_ body: @escaping @Sendable (LogManager, any TestClientProtocol) async throws -> Void) async throws {
        let directory = NSTemporaryDirectory() + "edgelog-http-streams-\(UUID().uuidString.prefix(8))"
        defer { try? FileManager.default.removeItem(atPath: directory) }
        var configuration = LogManager.Configuration(dataDirectory: directory)
        configuration.retentionCheckIntervalMs = nil
        let manager = try LogManager.open(configuration, logger: Logger(label: "test")).0
        defer { manager.close() }
        let fileProcessor = EdgelogConfig.Processor(
            name: "from_file", query: "CREATE STREAM from_file WITH (KAFKA_TOPIC = 'file_out') AS SELECT key FROM sensors")
        let runtime = StreamsRuntime(manager: manager, fileProcessors: [fileProcessor], logger: Logger(label: "test"))
        let running = Task { try await runtime.run() }
        defer { running.cancel() }
        let api = HTTPAPI(
            ingestor: Ingestor(manager: manager, autoCreateTopics: true, defaultPartitions: 1, logger: Logger(label: "test")),
            state: DaemonState(.ready), settings: .init(maxBodyBytes: 1 << 20, authToken: nil), processors: runtime,
            metrics: { ByteBuffer() })
        try await Application(router: api.router()).test(.router) { client in try await body(manager, client) }
        running.cancel()
        _ = await running.result
    }

    static func object(_ response: TestResponse) throws -> [String: Any] {
        try #require(JSONSerialization.jsonObject(with: Data(response.body.readableBytesView)) as? [String: Any])
    }

    static func create(_ client: any TestClientProtocol, _ query: String) async throws -> TestResponse {
        let body = try JSONSerialization.data(withJSONObject: ["query": query])
        return try await client.execute(uri: "/v1/processors", method: .post, headers: jsonType, body: ByteBuffer(bytes: body))
    }

    @Test func aProcessorIsCreatedRunsAndIsDropped() async throws {
        try await Self.withAPI { manager, client in
            let created = try await Self.create(client, "CREATE STREAM hot WITH (KAFKA_TOPIC = 'hot') AS SELECT key, $.t AS t FROM sensors WHERE $.t > 30")
            #expect(created.status == .created)
            #expect(try Self.object(created)["name"] as? String == "hot")
            let records = #"{"records":[{"key":"a","value":{"t":40}},{"key":"b","value":{"t":10}},{"key":"c","value":{"t":31}}]}"#
            try await client.execute(uri: "/v1/topics/sensors/records", method: .post, headers: Self.jsonType, body: ByteBuffer(string: records)) {
                #expect($0.status == .ok)
            }
            // Runs: both processors read the topic once it exists.
            var status: [String: Any] = [:]
            let deadline = ContinuousClock.now + .seconds(20)
            while ContinuousClock.now < deadline {
                status = try await client.execute(uri: "/v1/processors/hot", method: .get) { try Self.object($0) }
                if status["state"] as? String == "RUNNING", (status["metrics"] as? [String: Any])?["records_in"] as? Int == 3 { break }
                try await Task.sleep(for: .milliseconds(20))
            }
            let metrics = status["metrics"] as? [String: Any] ?? [:]
            #expect(metrics["records_out"] as? Int == 2, "\(status)")
            #expect(metrics["filtered"] as? Int == 1)
            #expect(status["defined_in"] as? String == "api")
            #expect(status["lag_records"] as? Int == 0)
            let output = try manager.partition(topic: "hot", 0).readRecords(from: 0, compressor: BatchCompressor())
            #expect(output.map { String(buffer: $0.key!) } == ["a", "c"])

            let list = try await client.execute(uri: "/v1/processors", method: .get) {
                try #require(JSONSerialization.jsonObject(with: Data($0.body.readableBytesView)) as? [[String: Any]])
            }
            #expect(list.map { $0["name"] as? String } == ["from_file", "hot"])
            #expect(list.first?["defined_in"] as? String == "file")

            try await client.execute(uri: "/v1/processors/hot", method: .delete) { #expect($0.status == .noContent) }
            try await client.execute(uri: "/v1/processors/hot", method: .get) { #expect($0.status == .notFound) }
            #expect(manager.topic("_edgelog.streams.hot") == nil, "its commit topic is gone")
            #expect(manager.topic("hot") != nil, "its output stays")
            // The same name can be used again.
            #expect(try await Self.create(client, "CREATE STREAM hot AS SELECT key FROM sensors").status == .created)
        }
    }

    @Test func refusalsHaveAStatusAndACode() async throws {
        try await Self.withAPI { _, client in
            let cases: [(String?, HTTPResponse.Status, String)] = [
                ("CREATE STREAM x AS SELECT FROM sensors", .badRequest, "invalid_query"),
                ("CREATE STREAM x AS SELECT key FROM sensors WITH", .badRequest, "invalid_query"),
                ("CREATE STREAM from_file AS SELECT key FROM sensors", .conflict, "processor_exists"),
                ("CREATE STREAM loop WITH (KAFKA_TOPIC = 'sensors') AS SELECT key FROM sensors", .badRequest, "invalid_query"),
                (nil, .badRequest, "missing_query"),
                (#"CREATE STREAM ".." AS SELECT key FROM sensors"#, .badRequest, "invalid_name"),
                (#"CREATE STREAM "a/b" AS SELECT key FROM sensors"#, .badRequest, "invalid_name"),
            ]
            for (query, status, code) in cases {
                let body = try JSONSerialization.data(withJSONObject: query.map { ["query": $0] } ?? ["other": 1])
                let response = try await client.execute(uri: "/v1/processors", method: .post, headers: Self.jsonType, body: ByteBuffer(bytes: body)) { $0 }
                #expect(response.status == status, "\(query ?? "no query")")
                #expect(try Self.object(response)["error"] as? String == code, "\(query ?? "no query")")
            }
            try await client.execute(uri: "/v1/processors", method: .post, headers: Self.jsonType, body: ByteBuffer(string: "{not json")) {
                #expect($0.status == .badRequest)
            }
            try await client.execute(uri: "/v1/processors/nope", method: .get) { #expect($0.status == .notFound) }
            try await client.execute(uri: "/v1/processors/nope", method: .delete) { #expect($0.status == .notFound) }
            let fileDrop = try await client.execute(uri: "/v1/processors/from_file", method: .delete) { $0 }
            #expect(fileDrop.status == .conflict)
            #expect(try Self.object(fileDrop)["error"] as? String == "defined_in_file")
        }
    }

    @Test func testRunsAQueryOnVirtualTime() async throws {
        try await Self.withAPI { _, client in
            let body = try JSONSerialization.data(withJSONObject: [
                "query": "CREATE STREAM s AS SELECT key, count(*) AS n FROM sensors WINDOW TUMBLING (SIZE 1 MINUTE) GROUP BY key",
                "input": #"{"key":"a","value":{},"timestamp":1000}"# + "\n" + #"{"key":"a","value":{},"timestamp":2000}"#,
            ])
            try await client.execute(uri: "/v1/processors/test", method: .post, headers: Self.jsonType, body: ByteBuffer(bytes: body)) { response in
                #expect(response.status == .ok)
                let lines = String(buffer: response.body).split(separator: "\n")
                #expect(lines.count == 1)
                #expect(lines.first?.contains(#""n":2"#) == true)
            }
            let bad = try JSONSerialization.data(withJSONObject: ["query": "CREATE STREAM s AS SELECT key FROM sensors", "input": "[1]"])
            let refused = try await client.execute(uri: "/v1/processors/test", method: .post, headers: Self.jsonType, body: ByteBuffer(bytes: bad)) { $0 }
            #expect(refused.status == .badRequest)
            #expect(try Self.object(refused)["error"] as? String == "invalid_fixture")
        }
    }
}
