import EdgeLogKafka
@testable import EdgeLogServer
import EdgeLogStorage
import Foundation
import Logging
import NIOCore
import Testing
@testable import EdgeLogCore
@testable import EdgeLogKafkaListener

/// The request decoder against mangled input: valid requests of every served API, cut at
/// every length and with bytes flipped at random, must be answered or refused, never crash.
@Suite struct KafkaBrokerFuzzTests {
    static func requests() throws -> [ByteBuffer] {
        var builder = RecordBatchBuilder(codec: .gzip)
        builder.append(Record(timestamp: 1_700_000_000_000, key: ByteBuffer(string: "k"), value: ByteBuffer(string: "v")))
        var batch = ByteBuffer()
        _ = try builder.finish(baseOffset: 0, into: &batch)
        func frame<R: KafkaRequestMessage>(_ request: R, version: Int16) throws -> ByteBuffer {
            var buffer = ByteBuffer()
            try KafkaRequestHeader(apiKey: R.apiKey, apiVersion: version, correlationId: 1, clientId: "fuzz")
                .write(to: &buffer, headerVersion: R.requestHeaderVersion(version))
            try request.write(to: &buffer, version: version)
            return buffer
        }
        let fetch = FetchRequest(maxWaitMs: 0, minBytes: 1, maxBytes: 1000, topics: [
            .init(topic: "t", partitions: [.init(partition: 0, fetchOffset: 0, partitionMaxBytes: 1000)]),
        ])
        return [
            try frame(ApiVersionsRequest(clientSoftwareName: "a", clientSoftwareVersion: "1"), version: 3),
            try frame(MetadataRequest(topics: [.init(name: "t")]), version: 9),
            try frame(MetadataRequest(topics: nil), version: 1),
            try frame(ProduceRequest(acks: -1, timeoutMs: 100, topicData: [.init(name: "t", partitionData: [.init(index: 0, records: batch)])]), version: 9),
            try frame(ProduceRequest(acks: 1, timeoutMs: 100, topicData: [.init(name: "t", partitionData: [.init(index: 0, records: batch)])]), version: 3),
            try frame(fetch, version: 12),
            try frame(fetch, version: 4),
            try frame(ListOffsetsRequest(topics: [.init(name: "t", partitions: [.init(partitionIndex: 0, timestamp: -1)])]), version: 7),
            try frame(CreateTopicsRequest(topics: [.init(name: "n", numPartitions: 1, replicationFactor: 1)], timeoutMs: 1), version: 7),
            try frame(DeleteTopicsRequest(topics: [.init(name: "n")], topicNames: ["n"], timeoutMs: 1), version: 6),
            try frame(DescribeConfigsRequest(resources: [.init(resourceType: 2, resourceName: "t")]), version: 4),
            try frame(InitProducerIdRequest(transactionTimeoutMs: -1), version: 4),
            try frame(FindCoordinatorRequest(key: "g", coordinatorKeys: ["g"]), version: 4),
        ]
    }

    @Test func mangledRequestsAreAnsweredOrRefusedNeverACrash() async throws {
        let directory = NSTemporaryDirectory() + "edgelog-fuzz-\(UUID().uuidString.prefix(8))"
        defer { try? FileManager.default.removeItem(atPath: directory) }
        var configuration = LogManager.Configuration(dataDirectory: directory)
        configuration.retentionCheckIntervalMs = nil
        let (manager, _) = try LogManager.open(configuration, logger: Logger(label: "fuzz"))
        defer { manager.close() }
        _ = try manager.createTopic("t", partitions: 1)
        var settings = EdgelogConfig.Kafka()
        settings.autoCreateTopics = false
        let broker = KafkaBroker(manager: manager, settings: settings, defaultPartitions: 1, logger: Logger(label: "fuzz"))

        var generator = SystemRandomNumberGenerator()
        var answered = 0
        var refused = 0
        for original in try Self.requests() {
            let bytes = Array(original.readableBytesView)
            var variants: [[UInt8]] = (0..<bytes.count).map { Array(bytes[..<$0]) }  // every truncation
            for _ in 0..<150 {
                var mangled = bytes
                for _ in 0..<Int.random(in: 1...4, using: &generator) {
                    mangled[Int.random(in: 0..<mangled.count, using: &generator)] = UInt8.random(in: 0...255, using: &generator)
                }
                variants.append(mangled)
            }
            for variant in variants {
                switch broker.start(ByteBuffer(bytes: variant), session: KafkaSession(peer: "fuzz")) {
                case .respond(let answer):
                    _ = await answer.value
                    answered += 1
                case .close:
                    refused += 1
                }
            }
        }
        #expect(answered > 0 && refused > 0, "answered \(answered), refused \(refused)")
        // A mangled request may still be a valid one (a DeleteTopics whose "n" became "t"), so
        // the check is that broker and log still work, not that a given topic survived.
        _ = try? manager.createTopic("after", partitions: 1)
        #expect(manager.topic("after") != nil, "the log still takes new topics")
        let versions = try Self.requests()[0]
        guard case .respond(let answer) = broker.start(versions, session: KafkaSession(peer: "after")) else {
            Issue.record("a well-formed ApiVersions was refused after the fuzzing")
            return
        }
        #expect((await answer.value)?.isEmpty == false, "and the broker still answers")
    }
}
