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

    @Test func tlsAndAuthenticationFailuresAreReportedNeverCrashAndMoveNothing() async throws {
        let tansu = try TansuBroker()
        // TLS toward a plaintext listener, and SASL toward a broker without authentication.
        let tlsUpstream = Self.config(bootstrap: tansu.bootstrap, partitions: 1, extra: "tls = true")
        let daemon = try DaemonProcess(extraConfig: tlsUpstream + """

            [[upstreams]]
            name = "sasl"
            bootstrap = ["\(tansu.bootstrap)"]
            sasl_mechanism = "SCRAM-SHA-256"
            sasl_username = "edge"
            sasl_password = "secret"
            retry_backoff_ms = 50
            retry_backoff_max_ms = 500
            """)
        defer { daemon.remove() }
        try await daemon.start()
        try await Self.ingest(daemon, start: 0, count: 10)
        // Generous: a TLS hello sent to a plain listener can wait for a request timeout first.
        let reported = try await eventually(timeout: .seconds(40)) {
            let (_, body) = try await daemon.request(.GET, "/v1/replication")
            return body.contains("TLS handshake") && body.contains("SASL SCRAM-SHA-256 authentication")
        }
        let (_, latest) = try await daemon.request(.GET, "/v1/replication")
        #expect(reported, "\(latest)")
        let json = try JSONSerialization.jsonObject(with: Data(try await daemon.request(.GET, "/v1/replication").1.utf8)) as! [String: Any]
        for upstream in json["upstreams"] as! [[String: Any]] {
            for partition in upstream["partitions"] as! [[String: Any]] {
                #expect(partition["checkpoint"] as? Int == 0)
                #expect(["retrying", "stalled"].contains(partition["state"] as? String), "\(partition)")
            }
        }
        #expect(try await daemon.stop() == 0, "a clean stop despite failing upstreams")
    }

    @Test func replicatesOverTLSAndRefusesAnUntrustedCertificate() async throws {
        // Tansu 0.6 cannot serve TLS itself, so a TLS-terminating proxy fronts it.
        let certificates = try MQTTTestBroker(start: false, tls: true)
        defer { withExtendedLifetime(certificates) {} }  // its deinit deletes the files
        let brokerPort = try MQTTTestBroker.freePort()
        let proxy = try FaultProxy(
            target: brokerPort, tls: (certificates.directory + "/server.crt", certificates.directory + "/server.key"))
        let tansu = try TansuBroker(port: brokerPort, advertisedPort: proxy.port)
        let untrusted = try MQTTTestBroker(start: false, tls: true)  // another CA
        let daemon = try DaemonProcess(extraConfig: Self.config(
            bootstrap: tansu.bootstrap, partitions: 1, extra: "tls_ca_file = \"\(certificates.directory)/ca.crt\"")
            + """

            [[upstreams]]
            name = "untrusted"
            bootstrap = ["\(tansu.bootstrap)"]
            tls_ca_file = "\(untrusted.directory)/ca.crt"
            topic_template = "untrusted.{topic}"
            retry_backoff_ms = 50
            retry_backoff_max_ms = 500
            """)
        defer { daemon.remove() }
        try await daemon.start()
        try await Self.ingest(daemon, start: 0, count: 100)
        try await Self.waitCaughtUp(daemon)
        // Read back through the TLS front with the client itself, trusting the test CA.
        var configuration = KafkaClientConfiguration()
        var tls = TLSConfiguration.makeClientConfiguration()
        tls.trustRoots = .file(certificates.directory + "/ca.crt")
        configuration.tls = tls
        let connection = try await KafkaConnection.connect(to: tansu.address, configuration: configuration)
        defer { connection.close() }
        let fetch = FetchRequest(maxWaitMs: 100, minBytes: 1, maxBytes: 1 << 20, topics: [
            .init(topic: "edge.plant1.events", partitions: [.init(partition: 0, fetchOffset: 0, partitionMaxBytes: 1 << 20)]),
        ])
        var bytes = try #require(try await connection.send(fetch, version: 12).responses.first?.partitions.first?.records)
        var stored = 0
        while let size = RecordBatch.frameSize(in: bytes, at: bytes.readerIndex), let slice = bytes.readSlice(length: size) {
            stored += Int(try RecordBatch(validating: slice).recordCount)
        }
        #expect(stored == 100, "replicated through TLS")
        let refused = try await eventually {
            let (_, body) = try await daemon.request(.GET, "/v1/replication")
            return body.contains("TLS handshake") && body.contains("untrusted")
        }
        #expect(refused)
        #expect(try await daemon.stop() == 0)
    }

    @Test func aLeaderChangeMovesProduceToTheNewLeaderWithNothingLost() async throws {
        let cluster = try await FakeKafkaCluster(brokers: [1, 2])
        defer { Task { await cluster.shutdown() } }
        let daemon = try DaemonProcess(extraConfig: Self.config(
            bootstrap: cluster.bootstrap(1), partitions: 1, codec: "none"))
        defer { daemon.remove() }
        try await daemon.start()
        try await Self.ingest(daemon, start: 0, count: 100)
        try await Self.waitCaughtUp(daemon)
        #expect(cluster.state.withLock { $0.accepted[1]?.count } == 100)

        cluster.state.withLock { $0.leader = 2 }  // node 1 now answers NOT_LEADER_OR_FOLLOWER
        let metadataBefore = cluster.state.withLock { $0.metadataRequests }
        try await Self.ingest(daemon, start: 100, count: 100)
        try await Self.waitCaughtUp(daemon)

        let state = cluster.state.withLock { $0 }
        #expect((state.refused[1] ?? 0) >= 1, "the old leader refused")
        #expect(state.metadataRequests > metadataBefore, "metadata refreshed after NOT_LEADER_OR_FOLLOWER")
        #expect(state.accepted[2]?.count == 100, "the new leader got the rest")
        let all = (state.accepted[1] ?? []) + (state.accepted[2] ?? [])
        #expect(Set(all.map { String($0.dropFirst().dropLast()) }) == Set((0..<200).map { "v\($0)" }))
        #expect(try await daemon.stop() == 0)
    }

    @Test func theByteRateLimitCapsTheUplink() async throws {
        let brokerPort = try MQTTTestBroker.freePort()
        let proxy = try FaultProxy(target: brokerPort)
        let tansu = try TansuBroker(port: brokerPort, advertisedPort: proxy.port)
        let rate = 10_000
        let daemon = try DaemonProcess(extraConfig: Self.config(
            bootstrap: tansu.bootstrap, partitions: 1, codec: "none", extra: "max_bytes_per_second = \(rate)"))
        defer { daemon.remove() }
        try await daemon.start()
        let started = ContinuousClock.now
        // ~1 MB stored in batches of ~10 KB: at 10 KB/s the uplink needs 100 s for it, so some
        // is still waiting when the test looks, however slow the machine was at ingesting.
        let padding = String(repeating: "x", count: 1_000)
        for round in 0..<100 {
            let lines = (0..<10).map { #"{"key":"device-\#($0 % 5)","value":"\#(padding)\#(round * 10 + $0)"}"# }
            let (status, body) = try await daemon.request(
                .POST, "/v1/topics/events/records", contentType: "application/x-ndjson", body: lines.joined(separator: "\n"))
            #expect(status == 200, "ingest: \(body)")
        }
        try await Task.sleep(for: .seconds(1))
        let stats = try proxy.command("stats")
        let elapsed = started.duration(to: .now)
        let json = try JSONSerialization.jsonObject(with: Data(stats.split(separator: "\n")[0].dropFirst(6).utf8)) as! [String: Any]
        let sent = json["bytes_up"] as! Int
        // An upper bound, so a slow machine cannot fail it: one second of burst, the rate over
        // the elapsed time, and a little for metadata, request headers and the one batch a
        // request may hold beyond its second of budget.
        let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
        #expect(Double(sent) <= Double(rate) * (seconds + 1) + 16_384 + 11_000, "sent \(sent) bytes in \(seconds) s")
        let partition = try #require(try await Self.replication(daemon).first)
        #expect((partition["lag_records"] as? Int ?? 0) > 0, "still behind: the limit holds it back")
        #expect(try await daemon.stop() == 0)
    }

    /// Issue 13: with the uplink down, retention deletes what a `required = false` upstream
    /// had not acknowledged, and says so in a `retention-unreplicated` marker; the marker
    /// replicates once the uplink is back, and the records missing upstream are exactly the
    /// ones the markers name, so the central side can tell the gap from a quiet sensor.
    @Test func retentionOfUnreplicatedDataLeavesAMarkerThatReachesUpstream() async throws {
        let brokerPort = try MQTTTestBroker.freePort()
        let proxy = try FaultProxy(target: brokerPort)
        let tansu = try TansuBroker(port: brokerPort, advertisedPort: proxy.port)
        let daemon = try DaemonProcess(extraConfig: """
            [storage]
            retention_check_interval_ms = 200

            [[topics]]
            name = "events"
            partitions = 1
            codec = "none"
            segment_bytes = 4096
            retention_bytes = 8192

            [[upstreams]]
            name = "central"
            bootstrap = ["\(tansu.bootstrap)"]
            required = false
            retry_backoff_ms = 50
            retry_backoff_max_ms = 500
            checkpoint_interval_ms = 100
            request_timeout_ms = 5000
            """)
        defer { daemon.remove() }
        try await daemon.start()
        try await Self.ingest(daemon, start: 0, count: 20)
        try await Self.waitCaughtUp(daemon)
        // What a marker calls replicated is what the upstream acknowledged and the checkpoint
        // holds (a crash resends from there); with it written, offsets below 20 are not lost.
        let persisted = try await eventually { try await Self.replication(daemon).first?["persisted_checkpoint"] as? Int == 20 }
        #expect(persisted, "the checkpoint of the first 20 records was written")

        try proxy.command("down")
        let total = 400
        for start in stride(from: 20, to: total, by: 20) { try await Self.ingest(daemon, start: start, count: 20) }
        var markers: [[String: Any]] = []
        let deleted = try await eventually(timeout: .seconds(30)) {
            markers = try await daemon.lossMarkers().filter { $0["reason"] as? String == "retention-unreplicated" }
            return !markers.isEmpty
        }
        #expect(deleted, "retention deleted unreplicated records and said so")
        var named = Set<Int>()
        for marker in markers {
            #expect(marker["topic"] as? String == "events" && marker["partition"] as? Int == 0)
            let first = try #require(marker["first_offset"] as? Int)
            let last = try #require(marker["last_offset"] as? Int)
            let unreplicated = try #require(marker["unreplicated_from"] as? Int)
            #expect(unreplicated >= 20, "offsets below 20 had reached the upstream")
            named.formUnion(max(first, unreplicated)...last)
        }

        try proxy.command("up")
        try await Self.waitCaughtUp(daemon)
        let upstreamMarkers = try await readUpstream(bootstrap: tansu.bootstrap, topic: "_edgelog.loss", expect: markers.count, extraWait: 0.5)
        #expect(upstreamMarkers.compactMap(\.valueText).filter { $0.contains(#""reason":"retention-unreplicated""#) }.count == markers.count)
        let arrived = try await readUpstream(bootstrap: tansu.bootstrap, topic: "events", expect: total - named.count, extraWait: 1)
        let missing = Set(0..<total).subtracting(Self.values(arrived).compactMap { Int($0.dropFirst()) })
        #expect(missing == named, "missing upstream: \(missing.count), named by markers: \(named.count)")
        #expect(try await daemon.stop() == 0)
    }

    @Test func deletingALocalTopicStopsItsReplicationCleanly() async throws {
        let tansu = try TansuBroker()
        let daemon = try DaemonProcess(extraConfig: Self.config(bootstrap: tansu.bootstrap, partitions: 1))
        defer { daemon.remove() }
        try await daemon.start()
        try await Self.ingest(daemon, start: 0, count: 20)
        try await Self.waitCaughtUp(daemon)
        let (status, body) = try await daemon.request(.DELETE, "/v1/topics/events")
        #expect(status == 200 || status == 204, "delete: \(status) \(body)")
        let gone = try await eventually { try await Self.replication(daemon).isEmpty }
        #expect(gone, "the deleted topic's shipper is gone from the status")
        // A new topic of the same name replicates from its own start.
        let (created, _) = try await daemon.request(
            .POST, "/v1/topics", contentType: "application/json", body: #"{"name":"events","partitions":1}"#)
        #expect(created == 201 || created == 200)
        try await Self.ingest(daemon, start: 100, count: 10)
        try await Self.waitCaughtUp(daemon)
        #expect(try await daemon.stop() == 0)
    }

    @Test(arguments: ["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"])
    func authenticatesWithSASLAndReportsWrongPasswords(mechanism: String) async throws {
        // Tansu 0.6 cannot keep SASL users, so the fake cluster plays the authenticating broker.
        let cluster = try await FakeKafkaCluster(brokers: [1])
        defer { Task { await cluster.shutdown() } }
        let credentials = KafkaSASLCredentials(
            mechanism: KafkaSASLCredentials.Mechanism(rawValue: mechanism)!, username: "edge-7", password: "s3cret=,x")
        cluster.state.withLock { $0.credentials = credentials }
        func upstream(_ name: String, password: String) -> String {
            """

            [[upstreams]]
            name = "\(name)"
            bootstrap = ["\(cluster.bootstrap(1))"]
            topic_template = "\(name).{topic}"
            sasl_mechanism = "\(mechanism)"
            sasl_username = "edge-7"
            sasl_password = "\(password)"
            retry_backoff_ms = 50
            retry_backoff_max_ms = 500
            """
        }
        let daemon = try DaemonProcess(extraConfig: """
            [[topics]]
            name = "events"
            partitions = 1
            """ + upstream("good", password: "s3cret=,x") + upstream("bad", password: "wrong"))
        defer { daemon.remove() }
        try await daemon.start()
        try await Self.ingest(daemon, start: 0, count: 30)
        let done = try await eventually {
            let (_, body) = try await daemon.request(.GET, "/v1/replication")
            let json = try JSONSerialization.jsonObject(with: Data(body.utf8)) as! [String: Any]
            let upstreams = Dictionary(uniqueKeysWithValues: (json["upstreams"] as! [[String: Any]]).map { ($0["name"] as! String, $0) })
            let good = (upstreams["good"]?["partitions"] as? [[String: Any]])?.first
            let bad = (upstreams["bad"]?["partitions"] as? [[String: Any]])?.first
            return (good?["checkpoint"] as? Int) == 30 && (bad?["checkpoint"] as? Int) == 0
                && (bad?["last_error"] as? String)?.contains("SASL \(mechanism) authentication") == true
        }
        let (_, body) = try await daemon.request(.GET, "/v1/replication")
        #expect(done, "\(body)")
        let state = cluster.state.withLock { $0 }
        #expect(state.accepted[1]?.count == 30)
        #expect(state.authenticated >= 1 && state.refusedLogins >= 1)
        #expect(try await daemon.stop() == 0)
    }

    @Test func upstreamsReplicateIndependently() async throws {
        let first = try TansuBroker()
        let second = try TansuBroker()
        let daemon = try DaemonProcess(extraConfig: Self.config(bootstrap: first.bootstrap, partitions: 1) + """

            [[upstreams]]
            name = "backup"
            bootstrap = ["\(second.bootstrap)"]
            required = false
            retry_backoff_ms = 50
            retry_backoff_max_ms = 500
            checkpoint_interval_ms = 100
            """)
        defer { daemon.remove() }
        try await daemon.start()
        second.stop()  // the backup is down from the start
        try await Self.ingest(daemon, start: 0, count: 100)
        let independent = try await eventually {
            let (_, body) = try await daemon.request(.GET, "/v1/replication")
            let json = try JSONSerialization.jsonObject(with: Data(body.utf8)) as! [String: Any]
            let upstreams = Dictionary(uniqueKeysWithValues: (json["upstreams"] as! [[String: Any]]).map { ($0["name"] as! String, $0) })
            let central = (upstreams["central"]?["partitions"] as? [[String: Any]])?.first
            let backup = (upstreams["backup"]?["partitions"] as? [[String: Any]])?.first
            return (central?["checkpoint"] as? Int) == 100 && (backup?["checkpoint"] as? Int) == 0
                && (backup?["last_error"] as? String) != nil
        }
        #expect(independent, "central caught up while the backup is down")
        try second.start()
        let both = try await eventually {
            let (_, body) = try await daemon.request(.GET, "/v1/replication")
            return body.components(separatedBy: #""lag_records":0"#).count - 1 == 4  // two upstreams, each twice
        }
        #expect(both, "the backup catches up once it is back")
        let records = try await readUpstream(bootstrap: second.bootstrap, topic: "events", expect: 100, extraWait: 0.5)
        #expect(records.count == 100)
        #expect(try await daemon.stop() == 0)
    }

    @Test func byKeyMappingRebatchesForAnUpstreamWithOtherPartitionCounts() async throws {
        let tansu = try TansuBroker()
        let cluster = KafkaCluster(bootstrap: [tansu.address], configuration: KafkaClientConfiguration())
        try await cluster.createTopic("edge.plant1.events", partitions: 3)
        await cluster.close()
        let daemon = try DaemonProcess(extraConfig: Self.config(
            bootstrap: tansu.bootstrap, partitions: 2, extra: "partition_mapping = \"by-key\""))
        defer { daemon.remove() }
        try await daemon.start()
        try await Self.ingest(daemon, start: 0, count: 300)
        try await Self.waitCaughtUp(daemon)
        let records = try await readUpstream(bootstrap: tansu.bootstrap, topic: "edge.plant1.events", expect: 300, extraWait: 1)
        #expect(records.count == 300)
        #expect(Set(Self.values(records)) == Set((0..<300).map { "v\($0)" }))
        for record in records {
            let expected = Murmur2.partition(for: ByteBuffer(string: record.keyText!), partitionCount: 3)
            #expect(record.partition == Int(expected), "\(record.keyText!) placed as a Kafka producer would")
            #expect(record.headerPairs.first { $0.0 == "seq" } != nil, "headers survive re-batching")
        }
        // Each key's records keep their order.
        for (_, group) in Dictionary(grouping: records, by: { $0.keyText! }) {
            let indexes = group.sorted { $0.offset < $1.offset }.map { Int($0.unquotedValue!.dropFirst())! }
            #expect(indexes == indexes.sorted())
        }
        #expect(try await daemon.stop() == 0)
    }
}
