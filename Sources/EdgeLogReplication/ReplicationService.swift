public import EdgeLogStorage
public import Logging
import Metrics
public import ServiceLifecycle
import Synchronization
public import EdgeLogCore

/// Keeps the storage engine's retention floors at what the `required` upstreams still need,
/// for every upstream known: the `upstream-sink` connectors register their replicator here,
/// running or not (a stopped connector's checkpoints still hold retention back), and
/// unregister it when deleted. Also runs the replicators it was made with (tests).
public final class ReplicationService: Service, Sendable {
    private let registered = Mutex<[String: UpstreamReplicator]>([:])
    private let initial: [UpstreamReplicator]
    let manager: LogManager
    let logger: Logger

    public init(upstreams: [EdgelogConfig.Upstream] = [], manager: LogManager, logger: Logger) throws {
        self.manager = manager
        self.logger = logger
        self.initial = try upstreams.map { try UpstreamReplicator(upstream: $0, manager: manager, logger: logger) }
        // Before anything else runs: retention must not take what an upstream still needs.
        for replicator in initial { register(replicator) }
        updateRetentionFloors()
    }

    /// Every upstream known, by name.
    var replicators: [UpstreamReplicator] {
        registered.withLock { $0.values.sorted { $0.upstream.name < $1.upstream.name } }
    }

    /// Takes `replicator` into the floors (replacing one of the same name).
    func register(_ replicator: UpstreamReplicator) {
        registered.withLock { $0[replicator.upstream.name] = replicator }
        replicator.observeCheckpoints { [weak self] in self?.updateRetentionFloors() }
        updateRetentionFloors()
    }

    func unregister(_ name: String) {
        _ = registered.withLock { $0.removeValue(forKey: name) }
        updateRetentionFloors()
    }

    func replicator(named name: String) -> UpstreamReplicator? { registered.withLock { $0[name] } }

    public func run() async throws {
        await cancelWhenGracefulShutdown {
            await withTaskGroup(of: Void.self) { group in
                for replicator in self.initial {
                    group.addTask { await replicator.run() }
                }
                group.addTask {
                    while !Task.isCancelled {
                        try? await Task.sleep(for: .seconds(1))
                        self.updateRetentionFloors()
                    }
                }
            }
        }
        updateRetentionFloors()
    }

    /// For every partition, the lowest offset a required upstream has not acknowledged (the
    /// retention floor), and the lowest any upstream has not (so that a deletion below the
    /// floor of a `required = false` upstream is reported as a loss).
    func updateRetentionFloors() {
        // One at a time: checkpoint loops and the periodic tick call this concurrently, and a
        // computation from older offsets must not overwrite a newer one.
        floorsUpdate.withLock { _ in computeRetentionFloors() }
    }

    private let floorsUpdate = Mutex(())

    private func computeRetentionFloors() {
        var floors: [UpstreamReplicator.PartitionKey: Int64] = [:]
        var unacknowledged: [UpstreamReplicator.PartitionKey: Int64] = [:]
        let replicators = self.replicators
        for replicator in replicators {
            for (key, acked) in replicator.ackedOffsets() {
                unacknowledged[key] = min(unacknowledged[key] ?? .max, acked)
                if replicator.upstream.required { floors[key] = min(floors[key] ?? .max, acked) }
            }
        }
        for name in manager.topicNames {
            guard let topic = manager.topic(name) else { continue }
            let replicating = replicators.filter { $0.upstream.replicates(name) }
            let required = replicating.contains { $0.upstream.required }
            for log in topic.partitions {
                // An upstream deleted (or no longer replicating the topic) holds nothing back.
                guard !replicating.isEmpty else {
                    if log.replicatedUpTo != nil { log.replicatedUpTo = nil }
                    if log.retentionFloor != nil { log.retentionFloor = nil }
                    continue
                }
                let key = UpstreamReplicator.PartitionKey(topic: name, partition: log.partition)
                // A partition no shipper has seen yet needs everything it holds.
                log.replicatedUpTo = unacknowledged[key] ?? log.logStartOffset
                log.retentionFloor = required ? floors[key] ?? log.logStartOffset : nil
            }
        }
    }

    public func status() -> [UpstreamReplicationStatus] {
        replicators.map { $0.status() }
    }

    /// Refreshes the replication gauges; called when /metrics is scraped.
    public func updateMetrics() {
        for upstream in status() {
            for partition in upstream.partitions {
                let dimensions = [
                    ("upstream", upstream.name), ("topic", partition.topic), ("partition", "\(partition.partition)"),
                ]
                Gauge(label: "edgelog_replication_checkpoint_offset", dimensions: dimensions).record(partition.checkpoint)
                Gauge(label: "edgelog_replication_lag_records", dimensions: dimensions).record(partition.lagRecords)
                Gauge(label: "edgelog_replication_lag_bytes", dimensions: dimensions).record(partition.lagBytes)
                Gauge(label: "edgelog_replication_lag_seconds", dimensions: dimensions).record(partition.lagSeconds)
                Gauge(label: "edgelog_replication_in_sync", dimensions: dimensions).record(partition.inSync ? 1 : 0)
                Gauge(label: "edgelog_replication_acked_records", dimensions: dimensions).record(partition.ackedRecords)
                Gauge(label: "edgelog_replication_acked_bytes", dimensions: dimensions).record(partition.ackedBytes)
                Gauge(label: "edgelog_replication_resent_records", dimensions: dimensions).record(partition.resentRecords)
                Gauge(label: "edgelog_replication_possible_duplicates", dimensions: dimensions).record(partition.possibleDuplicates)
                Gauge(label: "edgelog_replication_producer_resets", dimensions: dimensions).record(partition.producerResets)
                Gauge(label: "edgelog_replication_error", dimensions: dimensions).record(partition.state == "retrying" || partition.state == "stalled" ? 1 : 0)
            }
        }
    }
}
