import Foundation
import EdgeLogCore
import EdgeLogMQTT
import EdgeLogReplication

extension HTTPAPI {
    /// One MQTT broker in `/v1/status`: its connections, what ingest did, and the broker's
    /// own `$SYS` counters (absent until the broker has published them).
    static func writeMQTTStatus(_ json: inout JSONWriter, _ service: MQTTIngestService) {
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
