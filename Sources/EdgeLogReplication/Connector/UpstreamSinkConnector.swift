public import EdgeLogConnect
public import EdgeLogCore
import EdgeLogStorage
public import Logging

/// The `upstream-sink` connector type: each instance replicates the log to one upstream
/// cluster. Its offsets are the replication checkpoints (`consumer-replication-<name>` in each
/// partition directory), in Kafka Connect's sink shape: `kafka_topic`, `kafka_partition`,
/// `kafka_offset` (the next offset to send).
package struct UpstreamSinkFamily: ConnectorFamily {
    let replication: ReplicationService
    let logger: Logger

    package init(replication: ReplicationService, logger: Logger) {
        self.replication = replication
        self.logger = logger
    }

    package var type: ConnectorType { .upstreamSink }

    var manager: LogManager { replication.manager }

    static func upstream(_ spec: ConnectorSpec) -> EdgelogConfig.Upstream {
        guard case .upstream(var upstream) = spec.settings else { preconditionFailure("not an upstream-sink: \(spec.type)") }
        upstream.name = spec.name
        return upstream
    }

    package func makeTask(_ spec: ConnectorSpec) throws -> any ConnectorTask {
        // A new replicator each time: it reads the checkpoints as they are now.
        let replicator = try UpstreamReplicator(upstream: Self.upstream(spec), manager: manager, logger: logger)
        replication.register(replicator)
        return UpstreamSinkTask(replicator: replicator)
    }

    /// Retention keeps what this upstream has not acknowledged from the start, also while the
    /// connector is paused or stopped (its task registers a fresh replicator when it runs).
    package func adopted(_ spec: ConnectorSpec) {
        guard replication.replicator(named: spec.name) == nil else { return }
        do {
            replication.register(try UpstreamReplicator(upstream: Self.upstream(spec), manager: manager, logger: logger))
        } catch {
            logger.error("cannot read an upstream's checkpoints", metadata: ["edgelog.connector": "\(spec.name)", "edgelog.error": "\(error)"])
        }
    }

    package func offsets(_ spec: ConnectorSpec) throws -> [ConnectorOffset] {
        let name = PartitionShipper.checkpointName(upstream: spec.name)
        var offsets: [ConnectorOffset] = []
        for topicName in manager.topicNames {
            guard let topic = manager.topic(topicName) else { continue }
            for log in topic.partitions {
                guard let offset = try log.consumerCheckpoint(named: name) else { continue }
                offsets.append(
                    ConnectorOffset(
                        partition: ["kafka_topic": .string(topicName), "kafka_partition": .integer(Int64(log.partition))],
                        offset: ["kafka_offset": .integer(offset)]))
            }
        }
        return offsets
    }

    package func alterOffsets(_ spec: ConnectorSpec, to offsets: [ConnectorOffset]?) throws -> String {
        let name = PartitionShipper.checkpointName(upstream: spec.name)
        var changed = 0
        if let offsets {
            // Every entry checked before any is written.
            var writes: [(PartitionLog, Int64?)] = []
            for entry in offsets {
                guard case .string(let topicName)? = entry.partition["kafka_topic"],
                    case .integer(let partition)? = entry.partition["kafka_partition"]
                else {
                    throw ConnectorRuntimeError(.badRequest, "invalid_offsets", "each partition needs kafka_topic (a string) and kafka_partition (an integer)")
                }
                guard let log = manager.topic(topicName)?.partitions.first(where: { Int64($0.partition) == partition }) else {
                    throw ConnectorRuntimeError(.badRequest, "unknown_partition", "no local partition \(topicName)-\(partition)")
                }
                switch entry.offset?["kafka_offset"] {
                case nil: writes.append((log, nil))
                case .integer(let offset)?:
                    guard offset >= log.logStartOffset && offset <= log.logEndOffset else {
                        throw ConnectorRuntimeError(
                            .badRequest, "offset_out_of_range",
                            "\(topicName)-\(partition): \(offset) is outside the log (\(log.logStartOffset) to \(log.logEndOffset))")
                    }
                    writes.append((log, offset))
                default:
                    throw ConnectorRuntimeError(.badRequest, "invalid_offsets", "kafka_offset must be an integer (or the offset null)")
                }
            }
            for (log, offset) in writes {
                if let offset { try log.writeConsumerCheckpoint(named: name, offset: offset) } else { try removeCheckpoint(log, name) }
                changed += 1
            }
        } else {
            for topicName in manager.topicNames {
                for log in manager.topic(topicName)?.partitions ?? [] {
                    if try log.consumerCheckpoint(named: name) != nil { changed += 1 }
                    try removeCheckpoint(log, name)
                }
            }
        }
        // The retention floors follow the new checkpoints (of an upstream still registered).
        if replication.replicator(named: spec.name) != nil {
            replication.register(try UpstreamReplicator(upstream: Self.upstream(spec), manager: manager, logger: logger))
        }
        return offsets == nil
            ? "the connector's offsets were reset: \(changed) checkpoints removed, it replicates every partition from its start"
            : "the connector's offsets were altered: \(changed) partitions"
    }

    private func removeCheckpoint(_ log: PartitionLog, _ name: String) throws {
        let path = try log.consumerCheckpointPath(named: name)
        for file in [path, log.directory + "/consumer-\(name).producer"] where FileSystem.exists(file) {
            try FileSystem.remove(file)
        }
    }

    package func removed(_ spec: ConnectorSpec, keepOffsets: Bool) {
        replication.unregister(spec.name)
        guard !keepOffsets else { return }
        do { _ = try alterOffsets(spec, to: nil) } catch {
            logger.error("cannot drop a deleted upstream's checkpoints", metadata: ["edgelog.error": "\(error)"])
        }
    }
}

/// A running `upstream-sink`.
struct UpstreamSinkTask: ConnectorTask {
    let replicator: UpstreamReplicator

    func run() async throws { await replicator.run() }

    func health() -> ConnectorHealth {
        let status = replicator.status()
        var health = ConnectorHealth()
        let failing = status.partitions.filter { $0.state == "retrying" || $0.state == "stalled" }
        if let worst = failing.min(by: { ($0.lastErrorAtMs ?? .max) < ($1.lastErrorAtMs ?? .max) }) {
            health.problem = "\(failing.count) of \(status.partitions.count) partitions cannot replicate: \(worst.lastError ?? worst.state)"
            health.problemSinceMs = worst.lastErrorAtMs
            health.retries = failing.count
        }
        // When the upstream last had everything of some partition.
        health.lastSuccessMs = replicator.allShippers.map { $0.1.progress.withLock { $0.caughtUpAtMs } }.max()
        return health
    }

    func counters() -> ConnectorCounters {
        let status = replicator.status()
        var counters = ConnectorCounters()
        counters.recordsOut = status.partitions.reduce(0) { $0 + $1.ackedRecords }
        counters.bytesOut = status.partitions.reduce(0) { $0 + $1.ackedBytes }
        counters.lagRecords = status.partitions.reduce(0) { $0 + $1.lagRecords }
        counters.lagBytes = status.partitions.reduce(0) { $0 + $1.lagBytes }
        counters.lagSeconds = status.partitions.map(\.lagSeconds).max() ?? 0
        let resets = status.partitions.reduce(0) { $0 + $1.producerResets }
        if resets > 0 { counters.errors["producer_reset"] = Int64(resets) }
        let failing = status.partitions.filter { $0.lastError != nil }.count
        if failing > 0 { counters.errors["upstream"] = Int64(failing) }
        return counters
    }
}
