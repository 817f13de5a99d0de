import EdgeLogStorage
import Foundation
import Hummingbird
public import Logging
import Metrics
import NIOCore
import Prometheus
import ServiceLifecycle
public import EdgeLogCore
import EdgeLogMQTT
import EdgeLogReplication
import EdgeLogKafkaListener
import EdgeLogHTTP
import EdgeLogConnect
import EdgeLogStreams

/// `edgelog serve`: opens (and recovers) the log, then runs the HTTP API, the MQTT
/// connections and the systemd integration as one service group until SIGTERM/SIGINT, when it
/// stops ingest, drains, closes the log and exits.
///
/// Service order (graceful shutdown runs in reverse): watchdog, log, replication, MQTT, the
/// Kafka listener, HTTP, the shutdown signal. So on SIGTERM ingest is refused first, HTTP and MQTT finish what they
/// hold, replication lets its in-flight requests finish and writes its checkpoints, the log is
/// closed, and the watchdog is petted until the end.
public enum Daemon {
    /// Prometheus registry of this process; `serve` bootstraps swift-metrics with it once.
    static let registry = PrometheusCollectorRegistry()

    public static func bootstrapMetrics() {
        MetricsSystem.bootstrap(PrometheusMetricsFactory(registry: registry))
    }

    public static func run(config: EdgelogConfig, configPath: String?, logger: Logger) async throws {
        let notifier = SystemdNotifier()
        let state = DaemonState()
        _ = notifier.status("recovering the log in \(config.server.dataDirectory)")

        let (manager, reports) = try openLog(config, logger: logger)
        let loss = try LossRecorder(manager: manager, logger: logger)
        for report in reports { loss.recordRecovery(report) }
        let ingestor = Ingestor(
            manager: manager, autoCreateTopics: config.http.autoCreateTopics,
            defaultPartitions: config.http.defaultPartitions, logger: logger)
        let diskGauge = Gauge(label: "edgelog_disk_used_bytes")
        let stall = WatchdogStall()

        var services: [any Service] = [
            // Pets systemd's watchdog for as long as the process runs its services; a hang
            // (no pets) makes systemd restart it.
            WatchdogService(notifier: notifier, logger: logger, isHealthy: { !stall.isStalled }),
            LogService(manager: manager, logger: logger, onRecovered: { loss.recordRecovery($0) }),
            // After the log, so that it stops (appending what it has queued) before the log closes.
            loss,
            HangSimulationService(
                stalled: stall, enabled: ProcessInfo.processInfo.environment["EDGELOG_HANG_SIGNAL"] == "1", logger: logger),
        ]
        // After the log (so they stop first, and write their checkpoints while the log is
        // open). Replication keeps the retention floors of every upstream, running or not; the
        // connectors (MQTT brokers, HTTP endpoints, upstreams) run in the connector runtime.
        let replication = try ReplicationService(manager: manager, logger: logger)
        services.append(replication)
        let mqtt = MQTTServices()
        let endpoints = HTTPIngestEndpoints()
        let connectors = ConnectorRuntime(
            families: [
                MQTTSourceFamily(
                    ingestor: ingestor, stateDirectory: config.server.dataDirectory, loss: loss, services: mqtt, logger: logger),
                HTTPSourceFamily(endpoints: endpoints),
                UpstreamSinkFamily(replication: replication, logger: logger),
            ],
            fileConnectors: config.connectors, dataDirectory: config.server.dataDirectory,
            workerId: "\(config.http.host):\(config.http.port)", environment: ProcessInfo.processInfo.environment, logger: logger)
        services.append(connectors)
        // After the log, so that processors finish their commit and snapshot before it closes.
        var streamsTuning = ProcessorRunner.Tuning()
        streamsTuning.cycleRecords = config.streams.cycleRecords
        streamsTuning.snapshotIntervalMs = config.streams.snapshotIntervalMs
        streamsTuning.snapshotRecords = config.streams.snapshotRecords
        streamsTuning.pauseAfterCommitMs = Int64(ProcessInfo.processInfo.environment["EDGELOG_STREAMS_TEST_COMMIT_PAUSE_MS"] ?? "") ?? 0
        let processors = StreamsRuntime(manager: manager, fileProcessors: config.processors, tuning: streamsTuning, logger: logger)
        services.append(processors)
        if config.kafka.enabled { services.append(KafkaListener(config: config, manager: manager, logger: logger)) }
        let markReady: @Sendable () -> Void = {
            guard state.phase == .starting else { return }
            state.phase = .ready
            _ = notifier.ready(status: "ready: \(manager.topicNames.count) topics")
            logger.info("ready", metadata: ["edgelog.data_dir": "\(config.server.dataDirectory)"])
        }
        if config.http.enabled {
            let api = HTTPAPI(
                ingestor: ingestor, state: state,
                settings: .init(maxBodyBytes: config.http.maxBodyBytes, authToken: config.http.authToken),
                reporters: [connectors, replication, MQTTStatusReporter(mqtt)], loss: loss, connectors: connectors, endpoints: endpoints,
                processors: processors,
                metrics: {
                    replication.updateMetrics()
                    connectors.updateMetrics()
                    processors.updateMetrics()
                    diskGauge.record(manager.budget?.usedBytes ?? FileSystem.usedBytes(under: config.server.dataDirectory))
                    var bytes: [UInt8] = []
                    registry.emit(into: &bytes)
                    return ByteBuffer(bytes: bytes)
                })
            var httpLogger = logger
            httpLogger.logLevel = min(logger.logLevel, .notice) == .trace ? .trace : .notice
            let application = Application(
                router: api.router(),
                configuration: .init(address: .hostname(config.http.host, port: config.http.port), serverName: "edgelog"),
                onServerRunning: { channel in
                    logger.info("HTTP API listening", metadata: ["edgelog.address": "\(channel.localAddress.map { "\($0)" } ?? "?")"])
                    markReady()
                },
                logger: httpLogger)
            services.append(application)
        } else {
            services.append(ReadyService(markReady: markReady))
        }
        services.append(ShutdownSignalService(state: state, notifier: notifier, logger: logger))
        if let configPath {
            services.append(
                ReloadService(configPath: configPath, manager: manager, connectors: connectors, notifier: notifier, logger: logger))
        }

        var group = ServiceGroupConfiguration(
            services: services.map { .init(service: $0) }, gracefulShutdownSignals: [.sigterm, .sigint], logger: logger)
        group.maximumGracefulShutdownDuration = .seconds(config.server.shutdownTimeoutSeconds)
        try await ServiceGroup(configuration: group).run()
    }

    /// Opens the data directory (recovery happens here) and creates the configured topics.
    static func openLog(_ config: EdgelogConfig, logger: Logger) throws -> (LogManager, [RecoveryReport]) {
        var configuration = LogManager.Configuration(dataDirectory: config.server.dataDirectory)
        configuration.defaults = config.storage.log
        configuration.diskBudgetBytes = config.storage.diskBudgetBytes
        configuration.overflowPolicy = config.storage.overflow
        configuration.retentionCheckIntervalMs = config.storage.retentionCheckIntervalMs
        let started = Date()
        let (manager, reports) = try LogManager.open(configuration, logger: logger)
        for report in reports {
            if report.cutData {
                logger.error("recovery cut data", metadata: ["edgelog.report": "\(report)"])
            } else if report.checkpointProblem != nil || !report.rebuiltIndexes.isEmpty || !report.offsetGaps.isEmpty {
                logger.warning("recovered", metadata: ["edgelog.report": "\(report)"])
            }
        }
        logger.info(
            "log opened",
            metadata: [
                "edgelog.partitions": "\(reports.count)",
                "edgelog.seconds": "\(String(format: "%.3f", Date().timeIntervalSince(started)))",
            ])
        for topic in config.topics where manager.topic(topic.name) == nil {
            try manager.createTopic(topic.name, partitions: topic.partitions, config: topic.log)
        }
        return (manager, reports)
    }
}

/// Marks the daemon ready when there is no HTTP listener to wait for.
struct ReadyService: Service {
    let markReady: @Sendable () -> Void

    func run() async throws {
        markReady()
        try? await gracefulShutdown()
    }
}
