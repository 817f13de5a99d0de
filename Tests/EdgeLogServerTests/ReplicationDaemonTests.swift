import EdgeLogKafka
import EdgeLogStorage
import Foundation
import NIOCore
import NIOSSL
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// Replication end to end: the real `edgelog serve` shipping its log to a real Tansu broker,
/// read back with confluent-kafka, through uplink outages, upstream restarts and kill -9.
@Suite(
    .enabled(
        if: ProcessInfo.processInfo.environment["EDGELOG_IT"] == "1"
            && FileManager.default.isExecutableFile(atPath: DaemonProcess.binary) && TansuBroker.executable != nil),
    .serialized)
struct ReplicationDaemonTests {
    static func config(bootstrap: String, topic: String = "events", partitions: Int = 2, codec: String = "gzip", extra: String = "") -> String {
        """
        [[topics]]
        name = "\(topic)"
        partitions = \(partitions)
        codec = "\(codec)"

        [[upstreams]]
        name = "central"
        bootstrap = ["\(bootstrap)"]
        topic_template = "edge.{site}.{topic}"
        site = "plant1"
        retry_backoff_ms = 50
        retry_backoff_max_ms = 500
        checkpoint_interval_ms = 100
        request_timeout_ms = 5000
        \(extra)
        """
    }

    /// Posts `count` NDJSON records with keys, a header and timestamps; values "v<start+i>".
    static func ingest(_ daemon: DaemonProcess, topic: String = "events", start: Int, count: Int) async throws {
        var lines: [String] = []
        for index in start..<(start + count) {
            lines.append(#"{"key":"device-\#(index % 5)","value":"v\#(index)","timestamp":\#(1_700_000_000_000 + Int64(index)),"headers":{"seq":"\#(index)"}}"#)
        }
        let (status, body) = try await daemon.request(
            .POST, "/v1/topics/\(topic)/records", contentType: "application/x-ndjson", body: lines.joined(separator: "\n"))
        #expect(status == 200, "ingest: \(body)")
    }

    static func replication(_ daemon: DaemonProcess) async throws -> [[String: Any]] {
        let (status, body) = try await daemon.request(.GET, "/v1/replication")
        guard status == 200 else { throw MQTTTestFailure("replication status: \(status) \(body)") }
        let json = try JSONSerialization.jsonObject(with: Data(body.utf8)) as! [String: Any]
        let upstreams = json["upstreams"] as! [[String: Any]]
        return upstreams.first?["partitions"] as? [[String: Any]] ?? []
    }

    /// Waits until every partition's checkpoint reached its log end.
    static func waitCaughtUp(_ daemon: DaemonProcess, timeout: Duration = .seconds(60)) async throws {
        let caughtUp = try await eventually(timeout: timeout) {
            let partitions = try await replication(daemon)
            return !partitions.isEmpty && partitions.allSatisfy { ($0["lag_records"] as? Int) == 0 }
        }
        let state = try await replication(daemon)
        #expect(caughtUp, "replication caught up: \(state)")
    }

    /// Record values as ingested: the HTTP API stores a JSON string value as its JSON text.
    static func values(_ records: [UpstreamRecord]) -> [String] { records.compactMap(\.unquotedValue) }

    @Test func recordsFromHTTPAndMQTTArriveUpstreamIntactAndStillCompressed() async throws {
        let tansu = try TansuBroker()
        let mosquitto = try MQTTTestBroker()
        let daemon = try DaemonProcess(extraConfig: Self.config(bootstrap: tansu.bootstrap) + """

            [[mqtt.brokers]]
            name = "local"
            port = \(mosquitto.port)
            client_id = "edgelog-replication-test"

            [[mqtt.routes]]
            filter = "sensors/{device}/#"
            topic = "events"
            key = "{device}"
            """)
        defer { daemon.remove() }
        try await daemon.start()
        try await Self.ingest(daemon, start: 0, count: 200)
        for index in 0..<5 { try mosquitto.publish("sensors/pump\(index)/temp", Array("mqtt-\(index)".utf8)) }

        let records = try await readUpstream(bootstrap: tansu.bootstrap, topic: "edge.plant1.events", expect: 205, extraWait: 1)
        #expect(records.count == 205)
        let http = records.filter { $0.unquotedValue?.hasPrefix("v") == true }
        #expect(Set(Self.values(http)) == Set((0..<200).map { "v\($0)" }))
        for record in http {
            let index = Int(record.unquotedValue!.dropFirst())!
            #expect(record.keyText == "device-\(index % 5)")
            #expect(record.timestamp == 1_700_000_000_000 + Int64(index))
            #expect(record.timestamp_type == 0, "CreateTime kept")
            #expect(record.headerPairs.first { $0.0 == "seq" }?.1 == "\(index)")
        }
        let mqtt = records.filter { $0.valueText?.hasPrefix("mqtt-") == true }
        #expect(Set(mqtt.compactMap(\.keyText)) == Set((0..<5).map { "pump\($0)" }))
        // Same key, same partition, here and upstream (the partition is mapped 1:1).
        let partitionOfKey = Dictionary(grouping: http, by: { $0.keyText! }).mapValues { Set($0.map(\.partition)) }
        #expect(partitionOfKey.values.allSatisfy { $0.count == 1 })

        // Read raw from upstream: the stored batches are still gzip.
        let connection = try await KafkaConnection.connect(to: tansu.address, configuration: KafkaClientConfiguration())
        defer { connection.close() }
        let fetch = FetchRequest(maxWaitMs: 100, minBytes: 1, maxBytes: 1 << 20, topics: [
            .init(topic: "edge.plant1.events", partitions: [.init(partition: 0, fetchOffset: 0, partitionMaxBytes: 1 << 20)]),
        ])
        let fetched = try await connection.send(fetch, version: 12)
        let bytes = try #require(fetched.responses.first?.partitions.first?.records)
        let size = try #require(RecordBatch.frameSize(in: bytes, at: bytes.readerIndex))
        let batch = try RecordBatch(validating: bytes.getSlice(at: bytes.readerIndex, length: size)!)
        #expect(batch.codec == .gzip)
        #expect(batch.producerId >= 0, "sent as an idempotent producer")

        let partitions = try await Self.replication(daemon)
        #expect(partitions.count == 2)
        #expect(partitions.allSatisfy { $0["in_sync"] as? Bool == true })
        let (_, metrics) = try await daemon.request(.GET, "/metrics")
        #expect(metrics.contains("edgelog_replication_lag_records"))
        let cli = try DaemonProcess.cli(["replication", "status", "--server", daemon.baseURL])
        #expect(cli.0 == 0)
        #expect(cli.1.contains("edge.plant1.events") && cli.1.contains("in sync"), "\(cli.1)")
        #expect(try await daemon.stop() == 0)
    }

    @Test func anUplinkOutageLosesNothingAndResendsNothing() async throws {
        // Clients reconnect to the advertised address, so the proxy's port is advertised.
        let brokerPort = try MQTTTestBroker.freePort()
        let proxy = try FaultProxy(target: brokerPort)
        let tansu = try TansuBroker(port: brokerPort, advertisedPort: proxy.port)
        let daemon = try DaemonProcess(extraConfig: Self.config(bootstrap: tansu.bootstrap))
        defer { daemon.remove() }
        try await daemon.start()
        try await Self.ingest(daemon, start: 0, count: 500)
        try await Self.waitCaughtUp(daemon)

        try proxy.command("down")
        for round in 0..<5 { try await Self.ingest(daemon, start: 500 + round * 100, count: 100) }
        let acknowledged = try await Self.replication(daemon).reduce(0) { $0 + ($1["checkpoint"] as? Int ?? 0) }
        #expect(acknowledged == 500, "nothing acknowledged while down")
        let noticed = try await eventually {
            try await Self.replication(daemon).contains { ($0["last_error"] as? String) != nil && ($0["lag_records"] as? Int ?? 0) > 0 }
        }
        let state = try await Self.replication(daemon)
        #expect(noticed, "the outage shows in the status: \(state)")
        try proxy.command("up")
        try await Self.waitCaughtUp(daemon)

        // Connections cut mid-request while a slow link keeps requests in flight: the resends
        // carry the same producer id and sequences, so the broker drops what it already has.
        try proxy.command("rate 30000")
        for round in 0..<5 { try await Self.ingest(daemon, start: 1000 + round * 100, count: 100) }
        for _ in 0..<3 {
            try await Task.sleep(for: .milliseconds(150))
            try proxy.command("cut")
        }
        try proxy.command("rate 0")
        try await Self.waitCaughtUp(daemon)

        let records = try await readUpstream(bootstrap: tansu.bootstrap, topic: "edge.plant1.events", expect: 1500, extraWait: 1)
        #expect(records.count == 1500, "nothing lost, nothing stored twice")
        #expect(Set(Self.values(records)).count == 1500)
        let partitions = try await Self.replication(daemon)
        #expect(partitions.allSatisfy { ($0["possible_duplicates"] as? Int) == 0 })
        #expect(try await daemon.stop() == 0)
    }

    @Test func aRestartedEmptyUpstreamGetsWhatItHadNotAcknowledged() async throws {
        let tansu = try TansuBroker()
        let daemon = try DaemonProcess(extraConfig: Self.config(bootstrap: tansu.bootstrap))
        defer { daemon.remove() }
        try await daemon.start()
        try await Self.ingest(daemon, start: 0, count: 300)
        try await Self.waitCaughtUp(daemon)

        tansu.stop()
        try await Self.ingest(daemon, start: 300, count: 300)
        try await Task.sleep(for: .milliseconds(300))
        try tansu.start()  // memory storage: it lost the first 300
        try await Self.waitCaughtUp(daemon)

        let records = try await readUpstream(bootstrap: tansu.bootstrap, topic: "edge.plant1.events", expect: 300, extraWait: 1)
        #expect(Set(Self.values(records)) == Set((300..<600).map { "v\($0)" }), "exactly what it had not acknowledged")
        #expect(records.count == 300)
        #expect(try await daemon.stop() == 0)
    }

    @Test func killDashNineMidReplicationLosesNothingAndDuplicatesOnlyPastTheCheckpoint() async throws {
        let brokerPort = try MQTTTestBroker.freePort()
        let proxy = try FaultProxy(target: brokerPort)
        let tansu = try TansuBroker(port: brokerPort, advertisedPort: proxy.port)
        let daemon = try DaemonProcess(extraConfig: Self.config(
            bootstrap: tansu.bootstrap, partitions: 1, codec: "none", extra: "max_request_bytes = 4096"))
        defer { daemon.remove() }
        // A slow uplink from the start keeps replication mid-stream when the daemon dies, however
        // fast or slow the machine ingests.
        try proxy.command("rate 40000")
        try await daemon.start()
        for round in 0..<20 { try await Self.ingest(daemon, start: round * 100, count: 100) }
        let moving = try await eventually(timeout: .seconds(30)) {
            let partition = try await Self.replication(daemon).first
            return (partition?["persisted_checkpoint"] as? Int ?? 0) > 200
        }
        #expect(moving)
        #expect(try await daemon.stop(signal: SIGKILL) == -SIGKILL)
        let checkpointFile = daemon.dataDirectory + "/events-0/consumer-replication-central.checkpoint"
        let persisted = try #require(try Checkpoint.read(from: checkpointFile)?["offset"])
        #expect(persisted > 0 && persisted < 2000, "killed mid-stream (checkpoint \(persisted))")

        try proxy.command("rate 0")
        try await daemon.start()
        try await Self.waitCaughtUp(daemon)
        let records = try await readUpstream(bootstrap: tansu.bootstrap, topic: "edge.plant1.events", expect: 2000, extraWait: 2)
        let values = Self.values(records)
        #expect(Set(values) == Set((0..<2000).map { "v\($0)" }), "every record arrived")
        var seen: [String: Int] = [:]
        for value in values { seen[value, default: 0] += 1 }
        let duplicated = seen.filter { $0.value > 1 }.keys.map { Int($0.dropFirst())! }
        // Offsets equal the values' numbers here (one partition, ingested in order): a record
        // can only be sent twice if the upstream acknowledged it after the last checkpoint.
        #expect(duplicated.allSatisfy { $0 >= persisted }, "duplicates \(duplicated.count), all past checkpoint \(persisted)")
        let partition = try #require(try await Self.replication(daemon).first)
        print("kill -9: checkpoint \(persisted), \(values.count - 2000) duplicates, resent \(partition["resent_records"] ?? 0)")
        #expect(try await daemon.stop() == 0)
    }

    @Test func aMissingUpstreamTopicIsReportedAndNothingMovesUntilItExists() async throws {
        let tansu = try TansuBroker()
        let daemon = try DaemonProcess(extraConfig: Self.config(bootstrap: tansu.bootstrap, extra: "create_topics = false"))
        defer { daemon.remove() }
        try await daemon.start()
        try await Self.ingest(daemon, start: 0, count: 50)
        let reported = try await eventually {
            try await Self.replication(daemon).allSatisfy {
                ($0["last_error"] as? String)?.contains("does not exist") == true && ($0["checkpoint"] as? Int) == 0
            }
        }
        let state = try await Self.replication(daemon)
        #expect(reported, "\(state)")
        let cluster = KafkaCluster(bootstrap: [tansu.address], configuration: KafkaClientConfiguration())
        try await cluster.createTopic("edge.plant1.events", partitions: 2)
        await cluster.close()
        try await Self.waitCaughtUp(daemon)
        let records = try await readUpstream(bootstrap: tansu.bootstrap, topic: "edge.plant1.events", expect: 50, extraWait: 1)
        #expect(records.count == 50)
        #expect(try await daemon.stop() == 0)
    }

    @Test func anUpstreamWithTooFewPartitionsIsRefusedClearly() async throws {
        let tansu = try TansuBroker()
        let cluster = KafkaCluster(bootstrap: [tansu.address], configuration: KafkaClientConfiguration())
        try await cluster.createTopic("edge.plant1.events", partitions: 1)
        await cluster.close()
        let daemon = try DaemonProcess(extraConfig: Self.config(bootstrap: tansu.bootstrap, partitions: 2))
        defer { daemon.remove() }
        try await daemon.start()
        try await Self.ingest(daemon, start: 0, count: 40)
        let reported = try await eventually {
            let partitions = try await Self.replication(daemon)
            let second = partitions.first { ($0["partition"] as? Int) == 1 }
            let first = partitions.first { ($0["partition"] as? Int) == 0 }
            return (second?["last_error"] as? String)?.contains("has 1 partitions") == true
                && (second?["state"] as? String) == "stalled" && (second?["checkpoint"] as? Int) == 0
                && (first?["lag_records"] as? Int) == 0
        }
        let state = try await Self.replication(daemon)
        #expect(reported, "\(state)")
        #expect(try await daemon.stop() == 0)
    }

}
