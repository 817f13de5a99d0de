import EdgeLogServer
import EdgeLogStorage
import EdgeLogConnect
import Foundation
import Hummingbird
import HummingbirdTesting
import Logging
import NIOCore
import Testing
@testable import EdgeLogCore
@testable import EdgeLogHTTP

/// The HTTP API against a real log in a temporary directory (Hummingbird's router test mode:
/// no socket, the real handlers).
@Suite struct HTTPAPITests {
    struct Fixture {
        let directory: String
        let manager: LogManager
        let state: DaemonState
        let app: Application<RouterResponder<BasicRequestContext>>
    }

    static func withAPI(
        autoCreate: Bool = true, maxBodyBytes: Int = 1 << 20, token: String? = nil, budget: Int64? = nil,
        maxBatchBytes: Int = 1 << 20, _ body: @escaping @Sendable (Fixture, any TestClientProtocol) async throws -> Void
    ) async throws {
        let directory = NSTemporaryDirectory() + "edgelog-http-\(UUID().uuidString.prefix(8))"
        defer { try? FileManager.default.removeItem(atPath: directory) }
        var configuration = LogManager.Configuration(dataDirectory: directory)
        configuration.retentionCheckIntervalMs = nil
        configuration.defaults.maxBatchBytes = maxBatchBytes
        configuration.defaults.codec = .none
        configuration.diskBudgetBytes = budget
        let manager = try LogManager.open(configuration, logger: Logger(label: "test")).0
        defer { manager.close() }
        let ingestor = Ingestor(manager: manager, autoCreateTopics: autoCreate, defaultPartitions: 3, logger: Logger(label: "test"))
        let state = DaemonState(.ready)
        // The connector API too (without endpoints: /v1/topics/{topic}/records always takes data).
        let connectors = ConnectorRuntime(
            families: [HTTPSourceFamily(endpoints: HTTPIngestEndpoints())], fileConnectors: [], dataDirectory: directory,
            workerId: "test", logger: Logger(label: "test"))
        let api = HTTPAPI(
            ingestor: ingestor, state: state, settings: .init(maxBodyBytes: maxBodyBytes, authToken: token),
            connectors: connectors, metrics: { ByteBuffer(string: "# metrics\n") })
        let app = Application(router: api.router())
        let fixture = Fixture(directory: directory, manager: manager, state: state, app: app)
        try await app.test(.router) { client in try await body(fixture, client) }
    }

    static func json(_ response: TestResponse) throws -> [String: Any] {
        try #require(JSONSerialization.jsonObject(with: Data(response.body.readableBytesView)) as? [String: Any])
    }

    static let jsonType: HTTPFields = [.contentType: "application/json"]

    @Test func jsonRecordsAreCommittedAndReadBackExactly() async throws {
        try await Self.withAPI { fixture, client in
            let body = #"{"records":[{"key":"dev-1","value":{"t": 21.5, "unit":"C"}},{"key":"dev-1","value":"text","headers":{"src":"test","none":null}},{"value":null}]}"#
            try await client.execute(uri: "/v1/topics/sensors/records", method: .post, headers: Self.jsonType, body: ByteBuffer(string: body)) { response in
                #expect(response.status == .ok)
                let offsets = try #require(try Self.json(response)["offsets"] as? [[String: Int]])
                #expect(offsets.count == 3)
                #expect(offsets[0]["partition"] == offsets[1]["partition"], "same key, same partition")
                #expect(offsets[1]["offset"] == offsets[0]["offset"]! + 1)
            }
            let log = try fixture.manager.partition(topic: "sensors", Murmur2.partition(for: ByteBuffer(string: "dev-1"), partitionCount: 3))
            let records = try log.readRecords(from: 0, compressor: BatchCompressor()).filter { $0.key != nil }
            #expect(records.map { $0.value.map { String(buffer: $0) } } == [#"{"t": 21.5, "unit":"C"}"#, #""text""#])
            #expect(records[1].headers == [RecordHeader(key: "src", value: ByteBuffer(string: "test")), RecordHeader(key: "none", value: nil)])
            try await client.execute(uri: "/v1/topics/sensors/partitions/\(log.partition)/records?offset=0", method: .get) { response in
                #expect(response.status == .ok)
                #expect(String(buffer: response.body).contains(#""value":{"t": 21.5, "unit":"C"}"#))
                let records = try #require(try Self.json(response)["records"] as? [[String: Any]])
                #expect(records.filter { $0["key"] as? String == "dev-1" }.count == 2)
            }
        }
    }

    @Test func otherShapesAndFormats() async throws {
        try await Self.withAPI { fixture, client in
            // A bare array and a single record.
            try await client.execute(uri: "/v1/topics/a/records", method: .post, headers: Self.jsonType, body: ByteBuffer(string: #"[{"value":1},{"value":2,"partition":2}]"#)) { response in
                #expect(response.status == .ok)
                let offsets = try #require(try Self.json(response)["offsets"] as? [[String: Int]])
                #expect(offsets[1] == ["partition": 2, "offset": 0])
            }
            try await client.execute(uri: "/v1/topics/a/records", method: .post, headers: Self.jsonType, body: ByteBuffer(string: #"{"key":"k","value":{"x":1},"timestamp":1700000000000}"#)) { response in
                #expect(response.status == .ok)
            }
            // Confluent's binary embedded format.
            try await client.execute(uri: "/v1/topics/b/records", method: .post, headers: [.contentType: "application/vnd.kafka.binary.v2+json"],
                                     body: ByteBuffer(string: #"{"records":[{"key":"a2V5","value":"AAEC/w=="}]}"#)) { response in
                #expect(response.status == .ok)
            }
            let binary = try fixture.manager.topic("b")!.partitions.flatMap { try $0.readRecords(from: 0, compressor: BatchCompressor()) }
            #expect(binary.first?.value == ByteBuffer(bytes: [0, 1, 2, 255]) && binary.first?.key == ByteBuffer(string: "key"))
            // NDJSON bulk.
            let lines = (0..<500).map { #"{"key":"d\#($0 % 7)","value":{"seq":\#($0)}}"# }.joined(separator: "\n") + "\n"
            try await client.execute(uri: "/v1/topics/bulk/records", method: .post, headers: [.contentType: "application/x-ndjson"], body: ByteBuffer(string: lines)) { response in
                #expect(response.status == .ok)
                let offsets = try Self.json(response)["offsets"] as? [Any]
                #expect(offsets?.count == 500)
            }
            // Raw bodies with the key from the query or a header.
            try await client.execute(uri: "/v1/topics/raw/records?key=pump-7&partition=1", method: .post, headers: [.contentType: "application/octet-stream"], body: ByteBuffer(bytes: [0, 0, 9])) { response in
                #expect(response.status == .ok)
                let offsets = try Self.json(response)["offsets"] as? [[String: Int]]
                #expect(offsets == [["partition": 1, "offset": 0]])
            }
            let raw = try fixture.manager.partition(topic: "raw", 1).readRecords(from: 0, compressor: BatchCompressor())
            #expect(raw.first?.key == ByteBuffer(string: "pump-7") && raw.first?.value == ByteBuffer(bytes: [0, 0, 9]))
        }
    }

    @Test func badInputGetsAPreciseErrorAndWritesNothing() async throws {
        try await Self.withAPI(maxBodyBytes: 4096, maxBatchBytes: 2048) { fixture, client in
            let cases: [(String, String, HTTPResponse.Status, String)] = [
                ("application/json", "{\"records\":[{\"value\":1},\n {\"value\": tru}]}", .badRequest, "invalid_json"),
                ("application/json", #"{"records":[{"value":1},{"valu":2}]}"#, .badRequest, "invalid_json"),
                ("application/json", #"{"records":[{"value":1,"partition":-1}]}"#, .badRequest, "invalid_json"),
                ("application/json", #"{"records":[]}"#, .badRequest, "no_records"),
                ("application/json", "", .badRequest, "invalid_json"),
                ("application/json", #"{"records":[{"value":1}]} trailing"#, .badRequest, "invalid_json"),
                ("application/x-ndjson", "{\"value\":1}\n{\"value\":2}\n{\"value\":\n", .badRequest, "invalid_json"),
                ("application/vnd.kafka.binary.v2+json", #"[{"value":"not base64!"}]"#, .badRequest, "invalid_json"),
                ("application/xml", "<r/>", .unsupportedMediaType, "unsupported_media_type"),
                ("application/json", #"{"records":[{"value":1},{"value":1,"partition":9}]}"#, .notFound, "unknown_partition"),
                ("application/json", "[{\"value\":\"" + String(repeating: "x", count: 3000) + "\"}]", .contentTooLarge, "record_too_large"),
                ("application/octet-stream", String(repeating: "y", count: 5000), .contentTooLarge, "body_too_large"),
            ]
            for (contentType, body, status, code) in cases {
                try await client.execute(uri: "/v1/topics/t/records", method: .post, headers: [.contentType: contentType], body: ByteBuffer(string: body)) { response in
                    #expect(response.status == status, "\(body.prefix(60))")
                    let error = try Self.json(response)["error"] as? String
                    #expect(error == code, "\(body.prefix(60))")
                }
            }
            // The first case names the line and column of `tru`.
            try await client.execute(uri: "/v1/topics/t/records", method: .post, headers: Self.jsonType, body: ByteBuffer(string: "{\"records\":[{\"value\":1},\n {\"value\": tru}]}")) { response in
                let error = try Self.json(response)
                #expect(error["line"] as? Int == 2 && error["column"] as? Int == 12)
            }
            let written = fixture.manager.topic("t")?.partitions.reduce(Int64(0)) { $0 + $1.logEndOffset } ?? 0
            #expect(written == 0, "a rejected request writes nothing")
        }
    }

    @Test func unknownTopicsAre404WithoutAutoCreation() async throws {
        try await Self.withAPI(autoCreate: false) { fixture, client in
            try await client.execute(uri: "/v1/topics/nope/records", method: .post, headers: Self.jsonType, body: ByteBuffer(string: #"{"value":1}"#)) { response in
                #expect(response.status == .notFound)
                let error = try Self.json(response)["error"] as? String
                #expect(error == "unknown_topic")
            }
            try await client.execute(uri: "/v1/topics/nope", method: .get) { #expect($0.status == .notFound) }
            try await client.execute(uri: "/v1/topics/bad%20name/records", method: .post, headers: Self.jsonType, body: ByteBuffer(string: #"{"value":1}"#)) { response in
                #expect(response.status == .notFound)
            }
            #expect(fixture.manager.topicNames.isEmpty)
        }
    }

    @Test func aFullDiskBudgetIs507WithRetryAfter() async throws {
        try await Self.withAPI(budget: 8 * 1024) { _, client in
            var last: HTTPResponse.Status = .ok
            var retryAfter: String? = nil
            for _ in 0..<40 where last == .ok {
                let body = "[" + (0..<10).map { _ in #"{"value":"\#(String(repeating: "z", count: 90))"}"# }.joined(separator: ",") + "]"
                try await client.execute(uri: "/v1/topics/full/records", method: .post, headers: Self.jsonType, body: ByteBuffer(string: body)) { response in
                    last = response.status
                    retryAfter = response.headers[.retryAfter]
                    if response.status != .ok {
                        let error = try Self.json(response)["error"] as? String
                        #expect(error == "disk_budget_exceeded")
                    }
                }
            }
            #expect(last.code == 507)
            #expect(retryAfter == "30")
        }
    }

    @Test func stoppingRefusesIngestButStillServesReads() async throws {
        try await Self.withAPI { fixture, client in
            fixture.state.phase = .stopping
            try await client.execute(uri: "/v1/topics/s/records", method: .post, headers: Self.jsonType, body: ByteBuffer(string: #"{"value":1}"#)) { response in
                #expect(response.status == .serviceUnavailable)
                #expect(response.headers[.retryAfter] == "5")
            }
            try await client.execute(uri: "/readyz", method: .get) { #expect($0.status == .serviceUnavailable) }
            try await client.execute(uri: "/healthz", method: .get) { #expect($0.status == .ok) }
        }
    }

    @Test func theBearerTokenGuardsAllButTheProbes() async throws {
        try await Self.withAPI(token: "s3cret") { _, client in
            try await client.execute(uri: "/v1/topics", method: .get) { #expect($0.status == .unauthorized) }
            try await client.execute(uri: "/v1/topics", method: .get, headers: [.authorization: "Bearer wrong"]) { #expect($0.status == .unauthorized) }
            try await client.execute(uri: "/v1/topics", method: .get, headers: [.authorization: "Bearer s3cret"]) { #expect($0.status == .ok) }
            try await client.execute(uri: "/healthz", method: .get) { #expect($0.status == .ok) }
            try await client.execute(uri: "/readyz", method: .get) { #expect($0.status == .ok) }
            try await client.execute(uri: "/metrics", method: .get) { #expect($0.status == .unauthorized) }
            // The connector API is behind the same token.
            try await client.execute(uri: "/connectors", method: .get) { #expect($0.status == .unauthorized) }
            try await client.execute(uri: "/connector-plugins", method: .get) { #expect($0.status == .unauthorized) }
            try await client.execute(
                uri: "/connectors", method: .post, headers: [.contentType: "application/json"],
                body: ByteBuffer(string: #"{"name": "w", "config": {"connector.class": "http-source", "topic": "t"}}"#)
            ) { #expect($0.status == .unauthorized) }
            try await client.execute(uri: "/connectors", method: .get, headers: [.authorization: "Bearer s3cret"]) { response in
                #expect(response.status == .ok && String(buffer: response.body) == "[]", "nothing was created")
            }
        }
    }

    @Test func topicsAreCreatedDescribedListedAndDeleted() async throws {
        try await Self.withAPI { fixture, client in
            try await client.execute(uri: "/v1/topics", method: .post, headers: Self.jsonType, body: ByteBuffer(string: #"{"name":"made","partitions":2}"#)) { response in
                #expect(response.status == .created)
                let partitions = try Self.json(response)["partitions"] as? [Any]
                #expect(partitions?.count == 2)
            }
            try await client.execute(uri: "/v1/topics", method: .post, headers: Self.jsonType, body: ByteBuffer(string: #"{"name":"made"}"#)) { #expect($0.status == .conflict) }
            try await client.execute(uri: "/v1/topics", method: .post, headers: Self.jsonType, body: ByteBuffer(string: #"{"name":"no/slash"}"#)) { #expect($0.status == .badRequest) }
            try await client.execute(uri: "/v1/topics", method: .get) { response in
                #expect(String(buffer: response.body) == #"{"topics":[{"name":"made","partitions":2}]}"#)
            }
            try await client.execute(uri: "/v1/status", method: .get) { response in
                let phase = try Self.json(response)["phase"] as? String
                #expect(phase == "ready")
            }
            try await client.execute(uri: "/v1/topics/made", method: .delete) { #expect($0.status == .noContent) }
            #expect(fixture.manager.topicNames.isEmpty)
            try await client.execute(uri: "/v1/topics/made/partitions/0/records", method: .get) { #expect($0.status == .notFound) }
        }
    }
}
