import EdgeLogStorage
import Logging
import Synchronization
import EdgeLogCore

/// What lets the next start tell that a crash lost `ack = fast` messages: a small durable file,
/// `mqtt-<broker>.fast-ack`, that says "busy" (since when) while any acknowledged record is not
/// yet in the log, and "idle" otherwise. It is written busy before the first record of a busy
/// spell is acknowledged, so a crash cannot lose an acknowledged record while the file says
/// idle; it is written idle by a periodic tick once nothing is in flight, and at a clean stop.
/// Writes happen at transitions (at most a few a second), not per message.
///
/// `reserve` (network thread, before the record is queued and acknowledged) and `markIdleIfSettled`
/// (the tick) run under one lock, so the tick cannot write idle between a reservation and its
/// acknowledgement.
final class MQTTFastAckMark: Sendable {
    /// How often the tick looks (and, while busy, refreshes the file so the crash time is bounded).
    static let tickMs: Int64 = 250
    static let refreshMs: Int64 = 5_000

    /// What the last run left: nil after a clean stop or an idle moment.
    struct BusySpell: Equatable {
        var sinceMs: Int64
        var updatedMs: Int64
        var inFlight: Int64
    }

    let path: String
    private let logger: Logger
    /// Records acknowledged (or about to be) and not yet stored or given up on.
    private let inFlight = Atomic<Int>(0)
    private struct State {
        var busySinceMs: Int64? = nil
        var writtenMs: Int64 = 0
    }
    private let state = Mutex(State())

    init(path: String, logger: Logger) {
        self.path = path
        self.logger = logger
    }

    /// The busy spell the previous run did not end; reading it does not clear it.
    func previousBusySpell() -> BusySpell? {
        do {
            guard let saved = try Checkpoint.read(from: path), let since = saved["busy_since_ms"], since > 0 else { return nil }
            return BusySpell(sinceMs: since, updatedMs: saved["updated_ms"] ?? since, inFlight: saved["in_flight"] ?? 0)
        } catch {
            logger.warning("cannot read the ack = fast mark; assuming the last run lost what was in flight", metadata: ["edgelog.error": "\(error)"])
            return BusySpell(sinceMs: 0, updatedMs: 0, inFlight: 0)
        }
    }

    /// Before a record is queued and acknowledged: makes sure the file says busy first. Per
    /// message: an uncontended lock (the tick must not write idle between this and the
    /// acknowledgement); the clock is read only when a busy spell starts.
    func reserve(nowMs: @autoclosure () -> Int64 = wallClockMs()) {
        state.withLock { state in
            inFlight.add(1, ordering: .relaxed)
            guard state.busySinceMs == nil else { return }
            let now = nowMs()
            state.busySinceMs = now
            write(&state, busySinceMs: now, nowMs: now)
        }
    }

    /// Records that are stored, given up on, or were reserved and not queued.
    func settle(_ count: Int) {
        inFlight.subtract(count, ordering: .relaxed)
    }

    /// The tick: idle once nothing is in flight; while busy, a refresh now and then.
    func markIdleIfSettled(nowMs: Int64 = wallClockMs()) {
        state.withLock { state in
            guard let since = state.busySinceMs else { return }
            if inFlight.load(ordering: .relaxed) <= 0 {
                state.busySinceMs = nil
                write(&state, busySinceMs: 0, nowMs: nowMs)
            } else if nowMs - state.writtenMs >= Self.refreshMs {
                write(&state, busySinceMs: since, nowMs: nowMs)
            }
        }
    }

    /// At start: the file says idle from now on (what the last run lost has been reported).
    func reset(nowMs: Int64 = wallClockMs()) {
        state.withLock { state in
            state.busySinceMs = nil
            write(&state, busySinceMs: 0, nowMs: nowMs)
        }
    }

    private func write(_ state: inout State, busySinceMs: Int64, nowMs: Int64) {
        state.writtenMs = nowMs
        let values = ["busy_since_ms": busySinceMs, "updated_ms": nowMs, "in_flight": Int64(inFlight.load(ordering: .relaxed))]
        do { try Checkpoint(values).write(to: path) } catch {
            logger.error("cannot write the ack = fast mark: a crash now may lose messages without a loss marker", metadata: ["edgelog.error": "\(error)"])
        }
    }
}
