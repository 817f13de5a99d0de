import EdgeLogKafka
import Foundation
import NIOCore
import Testing

/// Fetch by topic id (KIP-516, Fetch v13+) and incremental fetch sessions (KIP-227) with real
/// clients: confluent-kafka (librdkafka 2.x fetches by topic id) and kafka-python (which
/// keeps a fetch session), and with the Swift client for what no client shows.
@Suite(
    .enabled(
        if: ProcessInfo.processInfo.environment["EDGELOG_IT"] == "1"
            && FileManager.default.isExecutableFile(atPath: DaemonProcess.binary)),
    .serialized)
struct KafkaListenerFetchSessionTests {
    static func metric(_ daemon: DaemonProcess, _ prefix: String) async throws -> Int {
        let (_, metrics) = try await daemon.request(.GET, "/metrics")
        let line = metrics.split(separator: "\n").first { $0.hasPrefix(prefix + " ") }
        return line.flatMap { $0.split(separator: " ").last }.flatMap { Int(Double($0) ?? 0) } ?? 0
    }

    static func ingest(_ daemon: DaemonProcess, topic: String, count: Int) async throws {
        let lines = (0..<count).map { #"{"key":"sensor-\#($0)","value":"reading \#($0)"}"# }
        let (status, body) = try await daemon.request(
            .POST, "/v1/topics/\(topic)/records", contentType: "application/x-ndjson", body: lines.joined(separator: "\n"))
        #expect(status == 200, "ingest: \(body)")
    }

    @Test func kafkaPythonReadsAHundredPartitionsThroughAnIncrementalSession() async throws {
        let daemon = try DaemonProcess(extraConfig: "[[topics]]\nname = \"wide\"\npartitions = 100\n")
        defer { daemon.remove() }
        try await daemon.start()
        // The consumer waits at the end of every partition in its session while 1000 records
        // arrive in five rounds: only incremental answers can bring them.
        let run = try runCapturing("/usr/bin/env", [
            "python3", interopScript("kafka_idle_consumer.py"), "--bootstrap", "127.0.0.1:\(daemon.kafkaPort)",
            "--topic", "wide", "--produce", "1000", "--seconds", "60",
        ])
        #expect(run.status == 0, "\(run.stderr)")
        #expect(run.stdout.contains(#""records": 1000, "distinct": 1000"#), "every record read once: \(run.stdout)")
        let created = try await Self.metric(daemon, #"edgelog_kafka_fetches_total{session="new"}"#)
        let incremental = try await Self.metric(daemon, #"edgelog_kafka_fetches_total{session="incremental"}"#)
        #expect(created >= 1, "kafka-python opened a fetch session")
        #expect(incremental > created, "and went on incrementally: \(created) new, \(incremental) incremental")
    }

    @Test func confluentKafkaFetchesByTopicId() async throws {
        let daemon = try DaemonProcess(extraConfig: "[[topics]]\nname = \"ids\"\npartitions = 3\n")
        defer { daemon.remove() }
        try await daemon.start()
        try await Self.ingest(daemon, topic: "ids", count: 300)
        let records = try await readUpstream(bootstrap: "127.0.0.1:\(daemon.kafkaPort)", topic: "ids", expect: 300, timeout: 30)
        #expect(records.count == 300)
        #expect(try await Self.metric(daemon, "edgelog_kafka_fetches_by_topic_id_total") > 0, "librdkafka used Fetch v13+")
    }

    /// A topic keeps its id across restarts; one deleted and created again is another topic,
    /// and a fetch by the old id is UNKNOWN_TOPIC_ID, so no consumer reads it by mistake.
    @Test func aTopicIdSurvivesARestartAndARecreatedTopicGetsANewOne() async throws {
        let daemon = try DaemonProcess(extraConfig: "[[topics]]\nname = \"ids\"\npartitions = 1\n")
        defer { daemon.remove() }
        try await daemon.start()
        try await Self.ingest(daemon, topic: "ids", count: 5)
        func connect() async throws -> KafkaConnection {
            try await KafkaConnection.connect(
                to: KafkaBrokerAddress(host: "127.0.0.1", port: daemon.kafkaPort), configuration: KafkaClientConfiguration())
        }
        func topicId() async throws -> KafkaUUID {
            let connection = try await connect()
            defer { connection.close() }
            let metadata = try await connection.send(MetadataRequest(topics: [.init(name: "ids")]), version: 12)
            return try #require(metadata.topics.first?.topicId)
        }
        func fetch(_ id: KafkaUUID) async throws -> FetchResponse.PartitionData? {
            let connection = try await connect()
            defer { connection.close() }
            let request = FetchRequest(maxWaitMs: 0, minBytes: 1, maxBytes: 1 << 20, topics: [
                .init(topicId: id, partitions: [.init(partition: 0, fetchOffset: 0, partitionMaxBytes: 1 << 20)]),
            ])
            let response = try await connection.send(request, version: 16)
            #expect(response.responses.first?.topicId == id)
            return response.responses.first?.partitions.first
        }
        let id = try await topicId()
        #expect(id != .zero)
        let byId = try #require(try await fetch(id))
        #expect(byId.errorCode == 0 && (byId.records?.readableBytes ?? 0) > 0 && byId.highWatermark == 5)

        #expect(try await daemon.stop() == 0)
        try await daemon.start()
        #expect(try await topicId() == id, "kept across a restart")

        let (deleted, _) = try await daemon.request(.DELETE, "/v1/topics/ids")
        #expect(deleted == 200 || deleted == 204)
        let (created, _) = try await daemon.request(
            .POST, "/v1/topics", contentType: "application/json", body: #"{"name":"ids","partitions":1}"#)
        #expect(created == 201 || created == 200)
        #expect(try await topicId() != id, "a topic created again is another topic")
        let stale = try #require(try await fetch(id))
        #expect(stale.errorCode == KafkaErrorCode.unknownTopicId.rawValue)
        #expect(stale.records?.readableBytes == 0, "an empty record set, not null")
        #expect(try await daemon.stop() == 0)
    }

    /// KIP-320 fencing: a client that believes in a newer leader epoch than the broker's gets
    /// UNKNOWN_LEADER_EPOCH (and refreshes its metadata), from Fetch and ListOffsets alike.
    @Test func aNewerLeaderEpochThanOursIsUnknown() async throws {
        let daemon = try DaemonProcess(extraConfig: "[[topics]]\nname = \"ids\"\npartitions = 1\n")
        defer { daemon.remove() }
        try await daemon.start()
        try await Self.ingest(daemon, topic: "ids", count: 3)
        let connection = try await KafkaConnection.connect(
            to: KafkaBrokerAddress(host: "127.0.0.1", port: daemon.kafkaPort), configuration: KafkaClientConfiguration())
        defer { connection.close() }
        for (epoch, expected) in [(Int32(-1), KafkaErrorCode.none), (0, .none), (5, .unknownLeaderEpoch)] {
            let fetch = try await connection.send(FetchRequest(maxWaitMs: 0, minBytes: 1, maxBytes: 1 << 20, topics: [
                .init(topic: "ids", partitions: [.init(partition: 0, currentLeaderEpoch: epoch, fetchOffset: 0, partitionMaxBytes: 1 << 20)]),
            ]), version: 12)
            #expect(fetch.responses.first?.partitions.first?.errorCode == expected.rawValue, "Fetch with epoch \(epoch)")
            let listed = try await connection.send(ListOffsetsRequest(replicaId: -1, topics: [
                .init(name: "ids", partitions: [.init(partitionIndex: 0, currentLeaderEpoch: epoch, timestamp: -1)]),
            ]), version: 7)
            #expect(listed.topics.first?.partitions.first?.errorCode == expected.rawValue, "ListOffsets with epoch \(epoch)")
        }
        #expect(try await daemon.stop() == 0)
    }
}
