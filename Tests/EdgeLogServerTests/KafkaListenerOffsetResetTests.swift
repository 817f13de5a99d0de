import EdgeLogKafka
import Foundation
import Testing

/// Consumers whose position is outside the log (past its end, below its start after
/// `drop-oldest`, a committed offset that no longer exists) with real clients: each reset
/// policy does what the client documents, and no client is left in a loop of failed Fetches.
@Suite(
    .enabled(
        if: ProcessInfo.processInfo.environment["EDGELOG_IT"] == "1"
            && FileManager.default.isExecutableFile(atPath: DaemonProcess.binary)),
    .serialized)
struct KafkaListenerOffsetResetTests {
    struct Outcome: Decodable {
        var firstOffset: Int?
        var low: Int?
        var high: Int?
        var value: String?
        var error: String?
        var timeout: Bool?

        enum CodingKeys: String, CodingKey {
            case firstOffset = "first_offset", low, high, value, error, timeout
        }
    }

    /// A daemon with the one-partition topic `reset`; `storage` goes into its [storage] table.
    static func daemon(storage: String = "", codec: String = "gzip") async throws -> DaemonProcess {
        let daemon = try DaemonProcess(extraConfig: """
            [storage]
            \(storage)

            [[topics]]
            name = "reset"
            partitions = 1
            codec = "\(codec)"
            """)
        try await daemon.start()
        return daemon
    }

    /// A daemon whose groups committed offset 5 of `reset`, which drop-oldest then deleted:
    /// about 400 KB go through a 128 KB disk budget after the commits.
    static func daemonWithCommittedOffsetsDropped(groups: [String]) async throws -> DaemonProcess {
        let daemon = try await Self.daemon(storage: """
            segment_bytes = 8192
            disk_budget_bytes = 131072
            overflow = "drop-oldest"
            """, codec: "none")
        try await Self.ingest(daemon, count: 20)
        for group in groups {
            let committed = try runCapturing("/usr/bin/env", [
                "python3", interopScript("kafka_offset_reset.py"), "--bootstrap", "127.0.0.1:\(daemon.kafkaPort)",
                "--topic", "reset", "--group", group, "--commit", "5",
            ])
            #expect(committed.status == 0, "commit: \(committed.stderr)")
        }
        try await Self.ingest(daemon, count: 4000, size: 80)
        return daemon
    }

    static func probe(_ daemon: DaemonProcess, client: String, _ arguments: [String]) throws -> Outcome {
        let run = try runCapturing("/usr/bin/env", [
            "python3", interopScript("kafka_offset_reset.py"), "--client", client,
            "--bootstrap", "127.0.0.1:\(daemon.kafkaPort)", "--topic", "reset",
        ] + arguments)
        guard run.status == 0, let line = run.stdout.split(separator: "\n").last else {
            throw MQTTTestFailure("kafka_offset_reset.py \(arguments) failed (\(run.status)): \(run.stderr)")
        }
        return try JSONDecoder().decode(Outcome.self, from: Data(line.utf8))
    }

    static func ingest(_ daemon: DaemonProcess, count: Int, size: Int = 8) async throws {
        let padding = String(repeating: "p", count: size)
        for start in stride(from: 0, to: count, by: 500) {
            let lines = (start..<min(count, start + 500)).map { #"{"value":"r\#($0)-\#(padding)"}"# }
            let (status, body) = try await daemon.request(
                .POST, "/v1/topics/reset/records", contentType: "application/x-ndjson", body: lines.joined(separator: "\n"))
            #expect(status == 200, "ingest: \(body)")
        }
    }

    /// The requests of one API the listener has answered so far (`edgelog_kafka_requests_total`).
    static func requests(_ daemon: DaemonProcess, api: String = "fetch") async throws -> Int {
        let (_, metrics) = try await daemon.request(.GET, "/metrics")
        let line = metrics.split(separator: "\n").first { $0.hasPrefix("edgelog_kafka_requests_total{api=\"\(api)\"}") }
        return line.flatMap { $0.split(separator: " ").last }.flatMap { Int(Double($0) ?? 0) } ?? 0
    }

    @Test(arguments: ["confluent", "kafka-python"])
    func aPositionPastTheEndResetsAsConfigured(client: String) async throws {
        let daemon = try await Self.daemon()
        defer { daemon.remove() }
        try await Self.ingest(daemon, count: 50)
        let fetchesBefore = try await Self.requests(daemon)

        let earliest = try Self.probe(daemon, client: client, ["--reset", "earliest", "--offset", "1000"])
        #expect(earliest.firstOffset == 0, "earliest: \(earliest)")
        #expect(earliest.value?.hasPrefix(#""r0-"#) == true)

        let latest = try Self.probe(daemon, client: client, ["--reset", "latest", "--offset", "1000"])
        #expect((latest.firstOffset ?? -1) >= 50, "latest: \(latest)")
        #expect(latest.value == "marker", "latest: nothing older than the end is read")

        let error = try Self.probe(daemon, client: client, ["--reset", "error", "--offset", "1000"])
        #expect(error.error != nil, "error: \(error)")
        #expect(error.error?.lowercased().contains("offset") == true, "the error names the offset: \(error)")

        // Three short-lived consumers with a 200 ms long poll: a few dozen Fetches. A client in a
        // loop of rejected answers sends about a thousand a second.
        let fetches = try await Self.requests(daemon) - fetchesBefore
        #expect(fetches > 0 && fetches < 400, "\(fetches) Fetch requests")
        #expect(try await daemon.stop() == 0)
    }

    @Test(arguments: ["confluent", "kafka-python"])
    func aCommittedOffsetBelowTheLogStartAfterDropOldestResetsAsConfigured(client: String) async throws {
        let daemon = try await Self.daemonWithCommittedOffsetsDropped(groups: ["earliest", "latest", "error"].map { "\(client)-\($0)" })
        defer { daemon.remove() }

        let earliest = try Self.probe(daemon, client: client, ["--reset", "earliest", "--group", "\(client)-earliest"])
        #expect((earliest.low ?? 0) > 5, "drop-oldest moved the log start past the committed offset: \(earliest)")
        #expect(earliest.firstOffset == earliest.low, "earliest: \(earliest)")

        let latest = try Self.probe(daemon, client: client, ["--reset", "latest", "--group", "\(client)-latest"])
        #expect((latest.firstOffset ?? -1) >= (latest.high ?? .max), "latest: \(latest)")
        #expect(latest.value == "marker")

        let error = try Self.probe(daemon, client: client, ["--reset", "error", "--group", "\(client)-error"])
        #expect(error.error != nil, "error: \(error)")
        #expect(try await daemon.stop() == 0)
    }

    /// KIP-320 with librdkafka: a position that carries a leader epoch is checked with
    /// OffsetForLeaderEpoch; one inside the log is kept, one past the epoch's end is a truncated
    /// log (an error under `error`, otherwise consumption goes on from the log end).
    @Test func aPositionWithALeaderEpochIsCheckedAndTruncated() async throws {
        let daemon = try await Self.daemon()
        defer { daemon.remove() }
        try await Self.ingest(daemon, count: 30)

        let inside = try Self.probe(daemon, client: "confluent", ["--reset", "error", "--offset", "5", "--leader-epoch", "0"])
        #expect(inside.firstOffset == 5, "a valid position is kept: \(inside)")
        #expect(try await Self.requests(daemon, api: "offsetForLeaderEpoch") >= 1, "librdkafka validated the position")

        let truncated = try Self.probe(daemon, client: "confluent", ["--reset", "error", "--offset", "1000", "--leader-epoch", "0"])
        #expect(truncated.error?.contains("truncation") == true, "truncation is reported: \(truncated)")

        let resumed = try Self.probe(daemon, client: "confluent", ["--reset", "latest", "--offset", "1000", "--leader-epoch", "0"])
        #expect((resumed.firstOffset ?? -1) >= 30 && resumed.value == "marker", "goes on from the log end: \(resumed)")
        #expect(try await daemon.stop() == 0)
    }

    /// DescribeProducers (KIP-664) shows an idempotent producer's last sequence and timestamp,
    /// also after a restart (rebuilt from the log's batch headers).
    @Test func describeProducersShowsIdempotentProducersAcrossARestart() async throws {
        let daemon = try await Self.daemon()
        defer { daemon.remove() }
        let produce = try runCapturing("/usr/bin/env", [
            "python3", interopScript("kafka_produce.py"), "--bootstrap", "127.0.0.1:\(daemon.kafkaPort)", "--topic", "reset",
            "--count", "300", "--codec", "lz4",
        ])
        #expect(produce.status == 0, "\(produce.stdout) \(produce.stderr)")
        func describe() async throws -> DescribeProducersResponse.PartitionResponse? {
            let connection = try await KafkaConnection.connect(
                to: KafkaBrokerAddress(host: "127.0.0.1", port: daemon.kafkaPort), configuration: KafkaClientConfiguration())
            defer { connection.close() }
            let response = try await connection.send(DescribeProducersRequest(topics: [
                .init(name: "reset", partitionIndexes: [0, 7]), .init(name: "nowhere", partitionIndexes: [0]),
            ]))
            #expect(response.topics.last?.partitions.first?.errorCode == KafkaErrorCode.unknownTopicOrPartition.rawValue)
            #expect(response.topics.first?.partitions.last?.errorCode == KafkaErrorCode.unknownTopicOrPartition.rawValue)
            return response.topics.first?.partitions.first
        }
        let before = try #require(try await describe())
        #expect(before.errorCode == 0)
        let producer = try #require(before.activeProducers.first, "one idempotent producer: \(before)")
        #expect(before.activeProducers.count == 1)
        #expect(producer.producerId >= 0 && producer.lastSequence == 299, "\(producer)")
        #expect(producer.lastTimestamp > 1_700_000_000_000)

        #expect(try await daemon.stop() == 0)
        try await daemon.start()
        let after = try #require(try await describe())
        #expect(after.activeProducers == before.activeProducers, "rebuilt from the log after a restart")
        #expect(try await daemon.stop() == 0)
    }

    @Test func kcatResetsAPositionPastTheEnd() async throws {
        let daemon = try await Self.daemon()
        defer { daemon.remove() }
        try await Self.ingest(daemon, count: 30)
        let bootstrap = "127.0.0.1:\(daemon.kafkaPort)"
        func kcat(_ reset: String) throws -> (status: Int32, stdout: String, stderr: String) {
            // Bounded: a kcat that never reaches the end would otherwise wait forever.
            try runCapturing("/usr/bin/timeout", [
                "-k", "5", "20", KafkaListenerTests.kcat, "-b", bootstrap, "-C", "-t", "reset", "-p", "0", "-o", "1000", "-e", "-q",
                "-X", "auto.offset.reset=\(reset)", "-f", "%o %s\\n",
            ])
        }
        let earliest = try kcat("earliest")
        #expect(earliest.status == 0, "\(earliest.stderr)")
        let lines = earliest.stdout.split(separator: "\n")
        #expect(lines.count == 30, "earliest reads the whole log: \(earliest.stdout) \(earliest.stderr)")
        #expect(lines.first?.hasPrefix(#"0 "r0-"#) == true)

        let latest = try kcat("latest")
        #expect(latest.status == 0, "\(latest.stderr)")
        #expect(latest.stdout.isEmpty, "latest starts at the end: \(latest.stdout)")

        let error = try kcat("error")
        #expect(error.stdout.isEmpty)
        #expect(error.stderr.lowercased().contains("offset out of range"), "error: \(error.status) \(error.stderr)")
    }

    /// kcat's balanced consumer (-G) with a committed offset that drop-oldest deleted: it
    /// resets as auto.offset.reset says.
    @Test func kcatResetsACommittedOffsetBelowTheLogStart() async throws {
        let daemon = try await Self.daemonWithCommittedOffsetsDropped(groups: ["kcat-earliest", "kcat-latest", "kcat-error"])
        defer { daemon.remove() }
        let (_, topic) = try await daemon.request(.GET, "/v1/topics/reset")
        let json = try JSONSerialization.jsonObject(with: Data(topic.utf8)) as? [String: Any]
        let partition = (json?["partitions"] as? [[String: Any]])?.first
        let low = try #require(partition?["log_start_offset"] as? Int, "\(topic)")
        let high = try #require(partition?["log_end_offset"] as? Int)
        #expect(low > 5, "drop-oldest moved the log start past the committed offset")
        func kcat(_ group: String, _ reset: String) throws -> (status: Int32, stdout: String, stderr: String) {
            try runCapturing("/usr/bin/timeout", [
                "-k", "5", "30", KafkaListenerTests.kcat, "-b", "127.0.0.1:\(daemon.kafkaPort)", "-G", group, "reset",
                "-X", "auto.offset.reset=\(reset)", "-e", "-q", "-f", "%o\\n",
            ])
        }
        let earliest = try kcat("kcat-earliest", "earliest")
        let offsets = earliest.stdout.split(separator: "\n").compactMap { Int($0) }
        #expect(offsets.first == low, "earliest starts at the log start: \(earliest.stdout.prefix(100)) \(earliest.stderr)")
        #expect(offsets.count == high - low)
        let latest = try kcat("kcat-latest", "latest")
        #expect(latest.stdout.isEmpty, "latest starts at the end: \(latest.stdout.prefix(100))")
        let error = try kcat("kcat-error", "error")
        #expect(error.stdout.isEmpty)
        #expect(error.stderr.lowercased().contains("offset out of range"), "error: \(error.status) \(error.stderr)")
        #expect(try await daemon.stop() == 0)
    }
}
