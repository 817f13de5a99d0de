import Metrics

/// Per-processor metrics, refreshed when /metrics is scraped, from the same status the API
/// shows (so the two never disagree).
extension StreamsRuntime {
    static let phases: [ProcessorStatus.Phase] = [.starting, .waitingForInput, .recovering, .running, .failed, .stopped]

    public func updateMetrics() {
        for (status, _) in statuses() {
            let processor = ("processor", status.name)
            for phase in Self.phases {
                Gauge(label: "edgelog_processor_state", dimensions: [processor, ("state", phase.rawValue)]).record(phase == status.phase ? 1 : 0)
            }
            let metrics = status.metrics
            let records: [(String, Int64)] = [
                ("in", metrics.recordsIn), ("out", metrics.recordsOut), ("filtered", metrics.filtered), ("late", metrics.late),
                ("late_dropped", metrics.lateDropped), ("late_side_topic", metrics.lateToSideTopic),
                ("late_update", metrics.lateUpdates), ("dead_lettered", metrics.deadLettered),
                ("dropped_new_key", metrics.droppedNewKeys), ("deduplicated", metrics.deduplicated),
                ("throttled", metrics.throttled), ("deadbanded", metrics.deadbanded),
            ]
            for (kind, count) in records {
                Gauge(label: "edgelog_processor_records", dimensions: [processor, ("kind", kind)]).record(count)
            }
            Gauge(label: "edgelog_processor_errors", dimensions: [processor]).record(status.errors)
            Gauge(label: "edgelog_processor_lag_records", dimensions: [processor]).record(status.lagRecords)
            if let watermark = metrics.watermarkMs {
                Gauge(label: "edgelog_processor_watermark_seconds", dimensions: [processor]).record(Double(watermark) / 1000)
                Gauge(label: "edgelog_processor_lag_seconds", dimensions: [processor]).record(
                    max(0, Double(status.wallClockAtPublishMs - watermark) / 1000))
            }
            Gauge(label: "edgelog_processor_open_windows", dimensions: [processor]).record(metrics.openWindows)
            Gauge(label: "edgelog_processor_keys", dimensions: [processor]).record(metrics.keys)
            Gauge(label: "edgelog_processor_state_bytes", dimensions: [processor]).record(metrics.stateBytes)
            Gauge(label: "edgelog_processor_evictions", dimensions: [processor]).record(metrics.evictions)
            Gauge(label: "edgelog_processor_pauses", dimensions: [processor]).record(metrics.pauses)
            Gauge(label: "edgelog_processor_commits", dimensions: [processor]).record(status.commits)
            if let commitMs = status.lastCommitMs {
                Gauge(label: "edgelog_processor_commit_latency_seconds", dimensions: [processor]).record(commitMs / 1000)
            }
            Gauge(label: "edgelog_processor_snapshots", dimensions: [processor]).record(status.snapshots)
            Gauge(label: "edgelog_processor_replay_mismatches", dimensions: [processor]).record(status.replayMismatches)
            Gauge(label: "edgelog_processor_skipped_input_records", dimensions: [processor]).record(status.skippedInputRecords)
        }
    }
}
