import EdgeLogStorage
import Foundation
import EdgeLogCore

/// One partition's replication to one upstream, as `/v1/replication`, `edgelog replication
/// status` and `/metrics` show it.
public struct PartitionReplicationStatus: Sendable, Codable, Equatable {
    public var topic: String
    public var partition: Int32
    public var upstreamTopic: String
    /// Next offset the upstream has not acknowledged.
    public var checkpoint: Int64
    /// The checkpoint as last persisted (what a restart resumes from).
    public var persistedCheckpoint: Int64
    public var logEndOffset: Int64
    public var lagRecords: Int64
    public var lagBytes: Int64
    /// Seconds since the upstream last had everything (0 when caught up).
    public var lagSeconds: Double
    public var inSync: Bool
    public var state: String
    public var lastError: String?
    public var lastErrorAtMs: Int64?
    public var ackedRecords: Int64
    public var ackedBytes: Int64
    public var resentRecords: Int64
    public var deduplicatedBatches: Int
    public var possibleDuplicates: Int64
    public var producerResets: Int
    public var skippedRecords: Int64
    /// Records not resent after a restart because the upstream said it held them.
    public var heldUpstreamRecords: Int64
}

public struct UpstreamReplicationStatus: Sendable, Codable, Equatable {
    public var name: String
    public var bootstrap: [String]
    public var required: Bool
    public var maxBytesPerSecond: Int?
    public var inSync: Bool
    public var lagRecords: Int64
    public var partitions: [PartitionReplicationStatus]
}

extension UpstreamReplicator {
    func status(nowMs: Int64 = wallClockMs()) -> UpstreamReplicationStatus {
        var partitions: [PartitionReplicationStatus] = []
        for (key, shipper) in allShippers {
            let progress = shipper.progress.withLock { $0 }
            let end = shipper.log.logEndOffset
            let lag = max(0, end - progress.acked)
            let lagSeconds = lag > 0 ? max(0, Double(nowMs - progress.caughtUpAtMs) / 1000) : 0
            let inSync = lag <= upstream.inSyncMaxLagRecords && lagSeconds <= Double(upstream.inSyncMaxLagSeconds)
                && progress.state != .stalled
            partitions.append(PartitionReplicationStatus(
                topic: key.topic, partition: key.partition, upstreamTopic: shipper.upstreamTopic,
                checkpoint: progress.acked, persistedCheckpoint: progress.persisted, logEndOffset: end,
                lagRecords: lag, lagBytes: lag > 0 ? shipper.log.bytes(from: progress.acked) : 0, lagSeconds: lagSeconds,
                inSync: inSync, state: progress.state.rawValue, lastError: progress.lastError,
                lastErrorAtMs: progress.lastErrorMs, ackedRecords: progress.ackedRecords, ackedBytes: progress.ackedBytes,
                resentRecords: progress.resentRecords, deduplicatedBatches: progress.deduplicatedBatches,
                possibleDuplicates: progress.possibleDuplicates, producerResets: progress.producerResets,
                skippedRecords: progress.skippedRecords, heldUpstreamRecords: progress.heldUpstreamRecords))
        }
        return UpstreamReplicationStatus(
            name: upstream.name, bootstrap: upstream.bootstrap.map(\.description), required: upstream.required,
            maxBytesPerSecond: upstream.maxBytesPerSecond, inSync: partitions.allSatisfy(\.inSync),
            lagRecords: partitions.reduce(0) { $0 + $1.lagRecords }, partitions: partitions)
    }
}
