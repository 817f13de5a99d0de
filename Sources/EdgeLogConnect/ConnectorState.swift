/// The states Kafka Connect reports, with the same names.
public enum ConnectorState: String, Sendable, Equatable {
    /// Known, not started yet (the daemon is starting).
    case unassigned = "UNASSIGNED"
    case running = "RUNNING"
    case paused = "PAUSED"
    case stopped = "STOPPED"
    /// Not doing its job: the task ended with an error (a restart is scheduled), or it runs
    /// but cannot reach its peer (it retries by itself).
    case failed = "FAILED"
    /// Between a failure's backoff and the new task, or restarting on request.
    case restarting = "RESTARTING"
}

/// What the operator asked for; persisted, so a paused connector stays paused across restarts.
public enum ConnectorTargetState: String, Sendable, Equatable, Codable {
    case running = "RUNNING"
    case paused = "PAUSED"
    case stopped = "STOPPED"
}
