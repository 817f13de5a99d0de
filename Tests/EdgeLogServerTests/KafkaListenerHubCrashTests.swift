import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// An edge replicating into an edgelog hub, both killed (-9) again and again while records are
/// ingested: the hub ends up with every acknowledged record exactly once. The edge keeps its
/// producer id and derives sequence numbers from local offsets, and after a restart asks the
/// hub (DescribeProducers) where its copy ends instead of resending from its checkpoint.
@Suite(
    .enabled(
        if: ProcessInfo.processInfo.environment["EDGELOG_IT"] == "1"
            && FileManager.default.isExecutableFile(atPath: DaemonProcess.binary)),
    .serialized)
struct KafkaListenerHubCrashTests {
    /// An edge with a two-partition topic `sensors` replicating into `hub`, retrying quickly.
    static func edge(replicatingTo hub: DaemonProcess, checkpointIntervalMs: Int) throws -> DaemonProcess {
        try DaemonProcess(extraConfig: """
            [[topics]]
            name = "sensors"
            partitions = 2

            [[upstreams]]
            name = "hub"
            bootstrap = ["127.0.0.1:\(hub.kafkaPort)"]
            retry_backoff_ms = 50
            retry_backoff_max_ms = 200
            checkpoint_interval_ms = \(checkpointIntervalMs)
            """)
    }

    /// A hub killed (-9) while an edge replicates into it rebuilds its idempotent-producer
    /// state from its log on restart, so the edge's retries of batches the hub had already
    /// stored are recognised: every record arrives exactly once.
    @Test func aHubKilledMidStreamStoresNoRetryTwice() async throws {
        let hub = try await KafkaListenerTests.daemon()
        defer { hub.remove() }
        let edge = try Self.edge(replicatingTo: hub, checkpointIntervalMs: 100)
        defer { edge.remove() }
        try await edge.start()
        let requests = 40
        for request in 0..<requests {
            if request == requests / 2 {
                #expect(try await hub.stop(signal: SIGKILL) == -SIGKILL)
                try await hub.start()
            }
            let body = (0..<50).map { #"{"key":"pump-\#($0 % 7)","value":"reading \#(request)-\#($0)"}"# }.joined(separator: "\n")
            let (status, _) = try await edge.request(.POST, "/v1/topics/sensors/records", contentType: "application/x-ndjson", body: body)
            #expect(status == 200)
        }
        let caughtUp = try await KafkaListenerTests.replicationCaughtUp(edge, partitions: 2, timeout: .seconds(60))
        #expect(caughtUp)
        let records = try await readUpstream(bootstrap: "127.0.0.1:\(hub.kafkaPort)", topic: "sensors", expect: requests * 50, timeout: 30, extraWait: 1)
        #expect(records.count == requests * 50, "every record exactly once in the hub")
        #expect(Set(records.compactMap(\.valueText)).count == requests * 50)
        let (_, replication) = try await edge.request(.GET, "/v1/replication")
        #expect(replication.contains(#""producer_resets":0"#), "\(replication)")
        #expect(try await edge.stop() == 0)
        #expect(try await hub.stop() == 0)
    }

    @Test func anEdgeAndItsHubKilledSixTimesStoreEveryRecordOnce() async throws {
        let hub = try DaemonProcess()
        defer { hub.remove() }
        try await hub.start()
        let edge = try Self.edge(replicatingTo: hub, checkpointIntervalMs: 2000)
        defer { edge.remove() }
        try await edge.start()

        var acked = 0
        var heldUpstream = 0
        func ingest(_ round: Int, _ request: Int) async throws {
            let body = (0..<50).map { #"{"key":"pump-\#($0 % 7)","value":"r\#(round)-\#(request)-\#($0)"}"# }.joined(separator: "\n")
            let (status, _) = try await edge.request(.POST, "/v1/topics/sensors/records", contentType: "application/x-ndjson", body: body)
            #expect(status == 200)
            if status == 200 { acked += 50 }
        }
        func held() async throws -> Int {
            let (_, body) = try await edge.request(.GET, "/v1/replication")
            return body.components(separatedBy: #""held_upstream_records":"#).dropFirst()
                .compactMap { Int($0.prefix { $0.isNumber }) }.reduce(0, +)
        }
        for round in 0..<6 {
            for request in 0..<5 { try await ingest(round, request) }
            // Killed while the shipper has the round's batches in flight and its checkpoint
            // (every 2 s) lags behind what the hub acknowledged.
            if round % 3 != 1 {
                heldUpstream += try await held()
                #expect(try await edge.stop(signal: SIGKILL) == -SIGKILL)
            }
            if round % 3 != 0 { #expect(try await hub.stop(signal: SIGKILL) == -SIGKILL) }
            if round % 3 != 0 { try await hub.start() }
            if round % 3 != 1 { try await edge.start() }
            for request in 5..<10 { try await ingest(round, request) }
        }
        let caughtUp = try await KafkaListenerTests.replicationCaughtUp(edge, partitions: 2, timeout: .seconds(60))
        #expect(caughtUp)
        heldUpstream += try await held()
        let records = try await readUpstream(bootstrap: "127.0.0.1:\(hub.kafkaPort)", topic: "sensors", expect: acked, timeout: 30, extraWait: 1)
        let distinct = Set(records.compactMap(\.valueText)).count
        #expect(distinct == acked, "every acknowledged record reached the hub")
        #expect(records.count == acked, "\(records.count - distinct) duplicates of \(acked)")
        #expect(heldUpstream > 0, "after a restart the edge resumed where the hub's copy ends, not at its checkpoint")
        let (_, replication) = try await edge.request(.GET, "/v1/replication")
        #expect(replication.contains(#""possible_duplicates":0"#), "\(replication)")
        #expect(try await edge.stop() == 0)
        #expect(try await hub.stop() == 0)
    }
}
