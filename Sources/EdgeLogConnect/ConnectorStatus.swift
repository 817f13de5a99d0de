import Foundation
import NIOCore
public import EdgeLogCore
import EdgeLogStorage

/// A connector's status as `GET /connectors/{name}/status` shows it: Kafka Connect's shape
/// (`connector.state`, `tasks`, `type`, `trace`) with what Connect does not say: the error and
/// when it happened, the last success, restarts and retries, and when the next retry is due.
public struct ConnectorStatus: Sendable {
    public var name: String
    public var type: ConnectorType
    public var state: ConnectorState
    public var target: ConnectorTargetState
    public var error: String?
    public var errorAtMs: Int64?
    public var lastSuccessMs: Int64?
    public var restarts: Int
    public var retries: Int
    public var nextRetryAtMs: Int64?
    public var runningSinceMs: Int64?
    public var fromFile: Bool
    public var counters: ConnectorCounters
}

extension ConnectorInstance {
    func status() -> ConnectorStatus {
        state.withLock { state in
            let health = state.task?.health() ?? ConnectorHealth()
            var reported = state.phase
            var error = state.lastError
            var errorAt = state.lastErrorAtMs
            if state.phase == .running, let problem = health.problem {
                // Running, but not doing its job: never RUNNING while failing.
                reported = .failed
                error = problem
                errorAt = health.problemSinceMs ?? errorAt
            }
            var fromFile = false
            if case .file = state.spec.origin { fromFile = true }
            return ConnectorStatus(
                name: state.spec.name, type: state.spec.type, state: reported, target: state.target, error: error,
                errorAtMs: errorAt, lastSuccessMs: health.lastSuccessMs, restarts: state.restarts, retries: health.retries,
                nextRetryAtMs: state.nextRetryAtMs, runningSinceMs: state.phase == .running ? state.startedAtMs : nil,
                fromFile: fromFile, counters: state.task.map { $0.counters().adding(state.carried) } ?? state.carried)
        }
    }
}

extension ConnectorStatus {
    package func write(_ json: inout JSONWriter, workerId: String) {
        json.beginObject()
        json.field("name", name)
        json.key("connector")
        json.beginObject()
        json.field("state", state.rawValue)
        json.field("worker_id", workerId)
        if let error, state == .failed || state == .restarting { json.field("trace", error) }
        json.endObject()
        json.key("tasks")
        json.beginArray()
        json.beginObject()
        json.field("id", 0)
        json.field("state", state.rawValue)
        json.field("worker_id", workerId)
        if let error, state == .failed || state == .restarting { json.field("trace", error) }
        json.endObject()
        json.endArray()
        json.field("type", type.kind.rawValue)
        // edgelog's own, beyond Kafka Connect's.
        json.field("connector_type", type.rawValue)
        json.field("target_state", target.rawValue)
        json.field("defined_in", fromFile ? "file" : "api")
        if let error {
            json.key("last_error")
            json.beginObject()
            json.field("message", error)
            if let errorAtMs { json.field("at_ms", errorAtMs) }
            json.endObject()
        }
        if let lastSuccessMs { json.field("last_success_at_ms", lastSuccessMs) }
        if let runningSinceMs { json.field("running_since_ms", runningSinceMs) }
        json.field("restarts", restarts)
        json.field("retries", retries)
        if let nextRetryAtMs { json.field("next_retry_at_ms", nextRetryAtMs) }
        json.key("metrics")
        counters.write(&json)
        json.endObject()
    }
}

extension ConnectorCounters {
    package func write(_ json: inout JSONWriter) {
        json.beginObject()
        json.field("records_in", recordsIn)
        json.field("bytes_in", bytesIn)
        json.field("records_out", recordsOut)
        json.field("bytes_out", bytesOut)
        json.key("errors")
        json.beginObject()
        for (kind, count) in errors.sorted(by: { $0.key < $1.key }) { json.field(kind, count) }
        json.endObject()
        if let lagRecords { json.field("lag_records", lagRecords) }
        if let lagBytes { json.field("lag_bytes", lagBytes) }
        if let lagSeconds {
            json.key("lag_seconds")
            json.raw(.init(string: lagSeconds.isFinite ? String(format: "%.3f", lagSeconds) : "0"))
        }
        json.endObject()
    }
}
