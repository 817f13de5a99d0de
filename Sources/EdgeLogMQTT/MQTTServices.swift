public import Logging
import ServiceLifecycle
import Synchronization
public import EdgeLogCore

/// The daemon's MQTT side: one ingest service per configured broker, all with the same routes.
package enum MQTTServices {
    /// The services of the running daemon, for `reload`.
    private static let running = Mutex<[MQTTIngestService]>([])

    package static func make(config: EdgelogConfig, ingestor: Ingestor, loss: LossRecorder, logger: Logger) -> [MQTTIngestService] {
        let services = config.brokers.map {
            MQTTIngestService(
                broker: $0, routes: config.routes, ingestor: ingestor, stateDirectory: config.server.dataDirectory,
                loss: loss, logger: logger)
        }
        running.withLock { $0 = services }
        return services
    }

    /// SIGHUP: new routes take effect at once when they subscribe to the same filters in the
    /// same order (a route's log topic or key changed); see `MQTTIngestService.reload(routes:)`.
    package static func reload(routes: [EdgelogConfig.Route]) {
        for service in running.withLock({ $0 }) { service.reload(routes: routes) }
    }
}
