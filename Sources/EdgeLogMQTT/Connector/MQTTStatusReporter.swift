public import EdgeLogCore

/// The MQTT brokers in `/v1/status` and `/v1/topics`: for each, its connections, what ingest
/// did, and the broker's own `$SYS` counters (absent until the broker has published them).
package struct MQTTStatusReporter: StatusReporter {
    let services: MQTTServices

    package init(_ services: MQTTServices) { self.services = services }

    package var statusSection: String { "mqtt" }
    package var showsInTopicList: Bool { true }

    package func writeStatus(_ json: inout JSONWriter) {
        json.beginArray()
        for service in services.all { Self.write(&json, service) }
        json.endArray()
    }

    static func write(_ json: inout JSONWriter, _ service: MQTTIngestService) {
        let statistics = service.statistics
        json.beginObject()
        json.field("name", service.broker.name)
        json.field("broker", "\(service.broker.host):\(service.broker.port)")
        json.field("ack", service.broker.ack.rawValue)
        json.field("connections", service.broker.connections)
        json.field("connections_ready", service.readyConnections)
        json.field("stored", statistics.stored)
        json.field("unrouted", statistics.unrouted)
        json.field("failed", statistics.failed)
        json.field("groups", statistics.groups)
        if let counters = service.brokerCounters {
            json.key("broker_counters")
            json.beginObject()
            if let value = counters.droppedMessages { json.field("dropped_messages", value) }
            if let value = counters.storedMessages { json.field("stored_messages", value) }
            if let value = counters.connectedClients { json.field("connected_clients", value) }
            json.field("drops_seen", counters.dropsSeen)
            if let at = counters.lastDropAtMs { json.field("last_drop_at_ms", at) }
            json.endObject()
        }
        json.endObject()
    }
}
