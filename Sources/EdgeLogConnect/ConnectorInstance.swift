import EdgeLogCore
import EdgeLogStorage
import Logging
import Synchronization

/// One connector and its supervisor: runs the task while the target state is RUNNING,
/// restarts it after a failure with capped exponential backoff (Kafka Connect leaves a failed
/// connector alone until someone calls restart), and stops it when paused, stopped, deleted
/// or when the daemon stops.
final class ConnectorInstance: Sendable {
    struct State: Sendable {
        var spec: ConnectorSpec
        var target: ConnectorTargetState
        var phase: ConnectorState = .unassigned
        var task: (any ConnectorTask)?
        var lastError: String?
        var lastErrorAtMs: Int64?
        /// Restarts after failures, and on request.
        var restarts = 0
        /// Failures in a row (the backoff's exponent); reset by a task that ran long enough.
        var consecutiveFailures = 0
        var nextRetryAtMs: Int64?
        var startedAtMs: Int64?
        /// Totals of the tasks before the current one.
        var carried = ConnectorCounters()
        var restartRequested = false
        var removed = false
    }

    let family: any ConnectorFamily
    let tuning: ConnectorRuntime.Tuning
    let logger: Logger
    let state: Mutex<State>
    private let wake = WakeSignal()

    init(spec: ConnectorSpec, target: ConnectorTargetState, family: any ConnectorFamily, tuning: ConnectorRuntime.Tuning, logger: Logger) {
        self.state = Mutex(State(spec: spec, target: target))
        self.family = family
        self.tuning = tuning
        var logger = logger
        logger[metadataKey: "edgelog.connector"] = "\(spec.name)"
        self.logger = logger
    }

    var name: String { state.withLock { $0.spec.name } }

    /// Applies a change (target state, configuration, a restart) and wakes the supervisor.
    func update(_ change: (inout State) -> Void) {
        state.withLock { change(&$0) }
        wake.signal()
    }

    // MARK: Supervision

    /// Runs until cancelled (the daemon stops) or the connector is removed; the current task
    /// has stopped when this returns.
    func supervise() async {
        while !Task.isCancelled {
            let (target, removed) = state.withLock { ($0.target, $0.removed) }
            if removed { return }
            guard target == .running else {
                state.withLock { state in
                    state.phase = target == .paused ? .paused : .stopped
                    state.nextRetryAtMs = nil
                    state.restartRequested = false
                }
                await wake.wait()
                continue
            }
            let spec = state.withLock { state in
                state.restartRequested = false
                if state.phase != .unassigned { state.phase = .restarting }
                return state.spec
            }
            let task: any ConnectorTask
            do {
                task = try family.makeTask(spec)
            } catch {
                await failed(error, ranMs: 0)
                continue
            }
            let started = wallClockMs()
            state.withLock { state in
                state.task = task
                if state.phase != .unassigned { state.phase = .restarting }
                state.startedAtMs = started
                state.nextRetryAtMs = nil
            }
            let outcome = await runUntilInterrupted(task)
            state.withLock { state in
                state.carried = task.counters().adding(state.carried)
                state.task = nil
            }
            switch outcome {
            case .interrupted:
                state.withLock { $0.consecutiveFailures = 0 }
                logger.info("connector task stopped")
            case .failed(let error):
                await failed(error, ranMs: wallClockMs() - started)
            case .ended:
                await failed(ConnectorRuntimeError(.conflict, "task_ended", "the task ended by itself"), ranMs: wallClockMs() - started)
            }
        }
    }

    private enum Outcome {
        case interrupted
        case failed(any Error)
        case ended
    }

    /// Runs the task until it ends, or until the target state leaves RUNNING, a restart is
    /// asked for, the connector is removed or the daemon stops; then cancels it and waits.
    private func runUntilInterrupted(_ task: any ConnectorTask) async -> Outcome {
        await withTaskGroup(of: Outcome?.self) { group in
            group.addTask {
                do {
                    try await task.run()
                    return Task.isCancelled ? .interrupted : .ended
                } catch {
                    return Task.isCancelled ? .interrupted : .failed(error)
                }
            }
            group.addTask {
                // RUNNING once the task has lasted the grace time.
                try? await Task.sleep(for: .milliseconds(self.tuning.startGraceMs))
                guard !Task.isCancelled else { return nil }
                let promoted = self.state.withLock { state -> Bool in
                    guard state.task != nil, state.phase == .restarting || state.phase == .unassigned else { return false }
                    state.phase = .running
                    return true
                }
                if promoted { self.logger.info("connector running") }
                return nil
            }
            group.addTask {
                while !Task.isCancelled {
                    let interrupted = self.state.withLock { $0.target != .running || $0.restartRequested || $0.removed }
                    if interrupted { return .interrupted }
                    await self.wake.wait()
                }
                return nil
            }
            var first: Outcome? = nil
            while first == nil, let next = await group.next() { first = next }
            group.cancelAll()
            await group.waitForAll()
            return first ?? .interrupted
        }
    }

    private func failed(_ error: any Error, ranMs: Int64) async {
        let delayMs = state.withLock { state -> Int64 in
            if ranMs >= tuning.healthyRunMs { state.consecutiveFailures = 0 }
            state.consecutiveFailures += 1
            let exponent = min(state.consecutiveFailures - 1, 20)
            let delay = min(tuning.restartBackoffMaxMs, tuning.restartBackoffMinMs << Int64(exponent))
            state.phase = .failed
            state.lastError = "\(error)"
            state.lastErrorAtMs = wallClockMs()
            state.nextRetryAtMs = wallClockMs() + delay
            return delay
        }
        logger.error(
            "connector failed; restarting with backoff",
            metadata: ["edgelog.error": "\(error)", "edgelog.retry_in_ms": "\(delayMs)"])
        await wake.wait(upTo: .milliseconds(delayMs))
        state.withLock { state in
            state.nextRetryAtMs = nil
            if state.target == .running && !state.removed { state.restarts += 1 }
        }
    }
}
