public import EdgeLogCore

/// The connectors in `/v1/status` (and so in `edgelog status`): each one's state and, when it
/// is failing, why.
extension ConnectorRuntime: StatusReporter {
    package var statusSection: String { "connectors" }

    package func writeStatus(_ json: inout JSONWriter) {
        json.beginArray()
        for status in statuses() {
            json.beginObject()
            json.field("name", status.name)
            json.field("type", status.type.rawValue)
            json.field("state", status.state.rawValue)
            if status.state == .failed || status.state == .restarting, let error = status.error { json.field("error", error) }
            json.endObject()
        }
        json.endArray()
    }
}
