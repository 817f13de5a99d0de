import EdgeLogKafka
import EdgeLogStorage
import Foundation
import NIOCore
import NIOSSL
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// Replication end to end, continued: TLS, SASL, leader changes, the byte rate limit,
/// retention markers, topic deletion, several upstreams and by-key re-batching.
extension ReplicationDaemonTests {
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
