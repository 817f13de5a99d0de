import EdgeLogConnect
import EdgeLogKafka
@testable import EdgeLogServer
import EdgeLogStorage
import Foundation
import Logging
import NIOCore
import Testing
@testable import EdgeLogCore
@testable import EdgeLogReplication

/// Retention against replication: what a `required` upstream has not acknowledged stays on
/// disk however small the retention limits, and the floor follows the checkpoints.
@Suite struct ReplicationRetentionTests {
    static func log(directory: String) throws -> (LogManager, PartitionLog) {
        var configuration = LogManager.Configuration(dataDirectory: directory)
        configuration.defaults.segmentBytes = 4096
        configuration.defaults.retentionBytes = 1  // as little as possible: only the floor keeps data
        configuration.defaults.codec = .none
        configuration.retentionCheckIntervalMs = nil
        let (manager, _) = try LogManager.open(configuration, logger: Logger(label: "test"))
        let topic = try manager.createTopic("t", partitions: 1)
        let partition = topic.partitions[0]
        for round in 0..<40 {
            _ = try partition.appendAndWait((0..<10).map {
                Record(timestamp: 1_700_000_000_000, value: ByteBuffer(string: "round \(round) record \($0) " + String(repeating: "x", count: 40)))
            })
        }
        #expect(partition.segments.count > 5, "several segments to delete")
        return (manager, partition)
    }

    static func unreachableUpstream(required: Bool) throws -> EdgelogConfig.Upstream {
        var upstream = EdgelogConfig.Upstream(name: "central")
        upstream.bootstrap = [KafkaBrokerAddress(host: "127.0.0.1", port: 1)]  // nothing listens on port 1
        upstream.required = required
        return upstream
    }

    @Test func nothingUnacknowledgedIsDeletedForARequiredUpstream() throws {
        let directory = NSTemporaryDirectory() + "edgelog-floor-\(UUID().uuidString.prefix(8))"
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let (manager, partition) = try Self.log(directory: directory)
        defer { manager.close() }
        let service = try ReplicationService(
            upstreams: [try Self.unreachableUpstream(required: true)], manager: manager, logger: Logger(label: "test"))
        manager.applyRetention()
        #expect(partition.logStartOffset == 0, "the upstream has acknowledged nothing")
        #expect(service.status().first?.partitions.first?.checkpoint == 0)
    }

    @Test func theFloorFollowsTheCheckpoint() throws {
        let directory = NSTemporaryDirectory() + "edgelog-floor-\(UUID().uuidString.prefix(8))"
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let (manager, partition) = try Self.log(directory: directory)
        defer { manager.close() }
        try partition.writeConsumerCheckpoint(named: "replication-central", offset: 200)
        _ = try ReplicationService(
            upstreams: [try Self.unreachableUpstream(required: true)], manager: manager, logger: Logger(label: "test"))
        manager.applyRetention()
        #expect(partition.logStartOffset > 0, "acknowledged segments go")
        #expect(partition.logStartOffset <= 200, "the segment holding the checkpoint stays")
    }

    @Test func anOptionalUpstreamDoesNotHoldRetention() throws {
        let directory = NSTemporaryDirectory() + "edgelog-floor-\(UUID().uuidString.prefix(8))"
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let (manager, partition) = try Self.log(directory: directory)
        defer { manager.close() }
        _ = try ReplicationService(
            upstreams: [try Self.unreachableUpstream(required: false)], manager: manager, logger: Logger(label: "test"))
        manager.applyRetention()
        #expect(partition.logStartOffset > 200, "retention ran as if there were no upstream")
    }

    /// An upstream-sink connector paused before a restart has no running task, and retention
    /// still keeps what it has not acknowledged. (Negative control: before `adopted`, only a
    /// running task registered the replicator, and this deleted down to the end.)
    @Test func aPausedUpstreamConnectorHoldsRetentionFromTheStart() throws {
        let directory = NSTemporaryDirectory() + "edgelog-floor-\(UUID().uuidString.prefix(8))"
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let (manager, partition) = try Self.log(directory: directory)
        defer { manager.close() }
        try partition.writeConsumerCheckpoint(named: "replication-central", offset: 200)
        try FileManager.default.createDirectory(atPath: directory + "/.connectors", withIntermediateDirectories: true)
        try #"{"name": "central", "type": "upstream-sink", "config": {"bootstrap": ["127.0.0.1:1"]}, "state": "PAUSED"}"#
            .write(toFile: directory + "/.connectors/central.json", atomically: true, encoding: .utf8)
        let replication = try ReplicationService(manager: manager, logger: Logger(label: "test"))
        let runtime = ConnectorRuntime(
            families: [UpstreamSinkFamily(replication: replication, logger: Logger(label: "test"))], fileConnectors: [],
            dataDirectory: directory, workerId: "test", logger: Logger(label: "test"))
        #expect(runtime.names == ["central"])
        manager.applyRetention()
        #expect(partition.logStartOffset > 0 && partition.logStartOffset <= 200, "only what the checkpoint passed: \(partition.logStartOffset)")
    }
}
