import EdgeLogCore
import Metrics

/// Per-connector metrics, refreshed when /metrics is scraped (from the same snapshots the
/// status shows, so the two never disagree).
extension ConnectorRuntime {
    static let states: [ConnectorState] = [.unassigned, .running, .paused, .stopped, .failed, .restarting]

    public func updateMetrics() {
        for status in statuses() {
            let connector = ("connector", status.name)
            let type = ("type", status.type.rawValue)
            for state in Self.states {
                Gauge(label: "edgelog_connector_state", dimensions: [connector, type, ("state", state.rawValue)])
                    .record(state == status.state ? 1 : 0)
            }
            let counters = status.counters
            Gauge(label: "edgelog_connector_records", dimensions: [connector, ("direction", "in")]).record(counters.recordsIn)
            Gauge(label: "edgelog_connector_records", dimensions: [connector, ("direction", "out")]).record(counters.recordsOut)
            Gauge(label: "edgelog_connector_bytes", dimensions: [connector, ("direction", "in")]).record(counters.bytesIn)
            Gauge(label: "edgelog_connector_bytes", dimensions: [connector, ("direction", "out")]).record(counters.bytesOut)
            for (kind, count) in counters.errors {
                Gauge(label: "edgelog_connector_errors", dimensions: [connector, ("kind", kind)]).record(count)
            }
            Gauge(label: "edgelog_connector_restarts", dimensions: [connector]).record(status.restarts)
            Gauge(label: "edgelog_connector_retries", dimensions: [connector]).record(status.retries)
            if let last = status.lastSuccessMs {
                Gauge(label: "edgelog_connector_last_success_timestamp_seconds", dimensions: [connector]).record(Double(last) / 1000)
            }
            if let lag = counters.lagRecords { Gauge(label: "edgelog_connector_lag_records", dimensions: [connector]).record(lag) }
            if let lag = counters.lagBytes { Gauge(label: "edgelog_connector_lag_bytes", dimensions: [connector]).record(lag) }
            if let lag = counters.lagSeconds { Gauge(label: "edgelog_connector_lag_seconds", dimensions: [connector]).record(lag) }
        }
    }
}
