import Logging
import ServiceLifecycle

/// The daemon's MQTT side: one ingest service per configured broker.
/// (Placeholder wiring until the MQTT ingest lands.)
enum MQTTServices {
    static func make(config: EdgelogConfig, ingestor: Ingestor, logger: Logger) -> [any Service] {
        []
    }

    static func reload(routes: [EdgelogConfig.Route]) {}
}
