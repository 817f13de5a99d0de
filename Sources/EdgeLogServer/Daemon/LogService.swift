public import EdgeLogStorage
public import Logging
public import ServiceLifecycle
public import EdgeLogCore
import EdgeLogMQTT
import EdgeLogReplication
import EdgeLogKafkaListener
import EdgeLogHTTP

/// Owns the log for the daemon's lifetime: it is started first and shut down last among the
/// data services, so that when it closes the log (draining every appender, flushing, writing
/// recovery points) nothing can append any more.
///
/// Meanwhile it tries, every `recoveryIntervalSeconds`, to recover partitions that a failed
/// write or fsync fenced (a disk that went read-only or failed), so ingest resumes by itself
/// once the disk works again; what that recovery cut off goes to `onRecovered`.
public struct LogService: Service {
    let manager: LogManager
    let logger: Logger
    let onRecovered: @Sendable (RecoveryReport) -> Void
    static let recoveryIntervalSeconds = 2

    public init(manager: LogManager, logger: Logger, onRecovered: @escaping @Sendable (RecoveryReport) -> Void = { _ in }) {
        self.manager = manager
        self.logger = logger
        self.onRecovered = onRecovered
    }

    public func run() async throws {
        try? await cancelWhenGracefulShutdown {
            while true {
                try await Task.sleep(for: .seconds(Self.recoveryIntervalSeconds))
                for report in manager.recoverFencedPartitions() { onRecovered(report) }
            }
        }
        logger.info("closing the log: draining appenders and writing recovery points")
        manager.close()
        logger.info("log closed cleanly")
    }
}

/// The first service to hear of a graceful shutdown (it is last in the group): flips the
/// daemon to `stopping` so that new ingest is refused with 503 while the rest drains, and tells
/// systemd.
public struct ShutdownSignalService: Service {
    let state: DaemonState
    let notifier: SystemdNotifier
    let logger: Logger

    public init(state: DaemonState, notifier: SystemdNotifier, logger: Logger) {
        self.state = state
        self.notifier = notifier
        self.logger = logger
    }

    public func run() async throws {
        try? await gracefulShutdown()
        state.phase = .stopping
        _ = notifier.stopping()
        logger.info("shutting down: ingest stopped, draining")
    }
}
