import EdgeLogKafka
import EdgeLogStorage
import Foundation
import Logging
import NIOSSL
import Synchronization
import EdgeLogCore

/// Replicates the local log to one upstream cluster: one shipper per local partition of the
/// replicated topics (found again every few seconds, so topics created at run time follow),
/// and the checkpoints that record what the upstream has acknowledged, written at a short
/// interval and once more when it stops.
final class UpstreamReplicator: Sendable {
    let upstream: EdgelogConfig.Upstream
    let manager: LogManager
    let cluster: KafkaCluster
    let limiter: ByteRateLimiter?
    let logger: Logger
    private let shippers = Mutex<[PartitionKey: PartitionShipper]>([:])
    private let setupError = Mutex<String?>(nil)

    struct PartitionKey: Hashable, Comparable, Sendable {
        var topic: String
        var partition: Int32
        static func < (a: Self, b: Self) -> Bool { (a.topic, a.partition) < (b.topic, b.partition) }
    }

    init(upstream: EdgelogConfig.Upstream, manager: LogManager, logger: Logger) throws {
        self.upstream = upstream
        self.manager = manager
        var configuration = KafkaClientConfiguration()
        configuration.clientId = upstream.clientId
        configuration.requestTimeout = .milliseconds(upstream.requestTimeoutMs)
        configuration.sasl = upstream.sasl
        if upstream.tls { configuration.tls = try Self.tlsConfiguration(upstream) }
        self.cluster = KafkaCluster(bootstrap: upstream.bootstrap, configuration: configuration)
        self.limiter = upstream.maxBytesPerSecond.map { ByteRateLimiter(bytesPerSecond: $0) }
        var logger = logger
        logger[metadataKey: "edgelog.upstream"] = "\(upstream.name)"
        self.logger = logger
        discoverPartitions()
    }

    static func tlsConfiguration(_ upstream: EdgelogConfig.Upstream) throws -> TLSConfiguration {
        var tls = TLSConfiguration.makeClientConfiguration()
        if let ca = upstream.tlsCAFile { tls.trustRoots = .file(ca) }
        if let certificate = upstream.tlsCertFile, let key = upstream.tlsKeyFile {
            tls.certificateChain = try NIOSSLCertificate.fromPEMFile(certificate).map { .certificate($0) }
            tls.privateKey = .file(key)
        }
        if !upstream.tlsVerify { tls.certificateVerification = .none }
        return tls
    }

    /// Shippers for every replicated partition, the new ones not yet started.
    @discardableResult
    private func discoverPartitions() -> [PartitionShipper] {
        // Shippers of deleted topics (or of a topic deleted and created again) stop.
        let retired = shippers.withLock { shippers -> [PartitionShipper] in
            let gone = shippers.filter { key, shipper in
                manager.topic(key.topic)?.partitions.first { $0.partition == key.partition } !== shipper.log
            }
            for key in gone.keys { shippers[key] = nil }
            return Array(gone.values)
        }
        for shipper in retired {
            logger.info("\(shipper.log.name) is gone locally; its replication stops")
            shipper.retire()
        }
        var created: [PartitionShipper] = []
        for name in manager.topicNames where upstream.replicates(name) {
            guard let topic = manager.topic(name) else { continue }
            for log in topic.partitions {
                let key = PartitionKey(topic: name, partition: log.partition)
                if shippers.withLock({ $0[key] }) != nil { continue }
                let shipper = PartitionShipper(
                    log: log, localPartitionCount: Int32(topic.partitions.count), upstream: upstream, cluster: cluster,
                    limiter: limiter, logger: logger)
                shippers.withLock { $0[key] = shipper }
                created.append(shipper)
            }
        }
        return created
    }

    var allShippers: [(PartitionKey, PartitionShipper)] {
        shippers.withLock { $0.sorted { $0.key < $1.key }.map { ($0.key, $0.value) } }
    }

    /// What this upstream has acknowledged and a restart would know, per local partition
    /// (for retention floors): a crash resumes from the persisted checkpoint, so nothing
    /// above it may go.
    func ackedOffsets() -> [PartitionKey: Int64] {
        shippers.withLock { $0.mapValues { shipper in shipper.progress.withLock { min($0.acked, $0.persisted) } } }
    }

    // MARK: Running

    func run() async {
        logger.info("replicating to \(upstream.bootstrap.map(\.description).joined(separator: ","))")
        await withTaskGroup(of: Void.self) { group in
            func startNew() {
                for (_, shipper) in allShippers where shipper.claimStart() {
                    group.addTask { await shipper.run() }
                }
            }
            startNew()
            group.addTask { [self] in await checkpointLoop() }
            var sinceDiscovery: Duration = .zero
            while !Task.isCancelled {
                try? await Task.sleep(for: .milliseconds(200))
                sinceDiscovery += .milliseconds(200)
                if sinceDiscovery >= .seconds(2) {
                    sinceDiscovery = .zero
                    discoverPartitions()
                    startNew()
                }
            }
            group.cancelAll()
        }
        writeCheckpoints()
        await cluster.close()
        logger.info("replication stopped; checkpoints written")
    }

    private func checkpointLoop() async {
        while !Task.isCancelled {
            try? await Task.sleep(for: .milliseconds(upstream.checkpointIntervalMs))
            writeCheckpoints()
        }
    }

    /// Persists every checkpoint that moved. A failure is logged and retried next time: the
    /// old checkpoint only means re-sending, never losing.
    func writeCheckpoints() {
        var moved = false
        for (_, shipper) in allShippers {
            let (acked, persisted) = shipper.progress.withLock { ($0.acked, $0.persisted) }
            guard acked != persisted else { continue }
            do {
                try shipper.log.writeConsumerCheckpoint(named: shipper.checkpointName, offset: acked)
                shipper.progress.withLock { $0.persisted = acked }
                moved = true
            } catch {
                logger.warning("cannot write replication checkpoint for \(shipper.log.name): \(error)")
            }
        }
        if moved, let observer = checkpointObserver.withLock({ $0 }) { observer() }
    }

    private let checkpointObserver = Mutex<(@Sendable () -> Void)?>(nil)

    /// Called after checkpoints moved, so that retention floors and the log's view of what is
    /// replicated (which loss markers report) follow at once rather than at the next tick.
    func observeCheckpoints(_ observer: @escaping @Sendable () -> Void) {
        checkpointObserver.withLock { $0 = observer }
    }
}
