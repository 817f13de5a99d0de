import Synchronization

/// The MQTT ingest services running now (one per running `mqtt-source` connector), for the
/// mqtt section of `/v1/status` and `/v1/topics`.
package final class MQTTServices: Sendable {
    private let running = Mutex<[ObjectIdentifier: MQTTIngestService]>([:])

    package init() {}

    func add(_ service: MQTTIngestService) { running.withLock { $0[ObjectIdentifier(service)] = service } }
    func remove(_ service: MQTTIngestService) { _ = running.withLock { $0.removeValue(forKey: ObjectIdentifier(service)) } }

    package var all: [MQTTIngestService] { running.withLock { $0.values.sorted { $0.broker.name < $1.broker.name } } }
}
