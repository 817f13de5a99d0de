import Synchronization
import EdgeLogCore

/// Bounds the answers a connection has pending (read but not yet written). Kafka clients
/// pipeline requests; past the bound the connection's reader waits for the writer, so the
/// socket is no longer read and TCP pushes back on the client, instead of the broker piling
/// up tasks and buffered answers for a client that sends faster than it reads.
///
/// One reader acquires, one writer releases.
package final class AnswerSlots: Sendable {
    private struct State {
        var free: Int
        var closed = false
        var waiter: CheckedContinuation<Bool, Never>?
    }

    private let state: Mutex<State>

    init(_ count: Int) {
        precondition(count > 0)
        state = Mutex(State(free: count))
    }

    /// Takes a slot, waiting for one if none is free; false once the connection is closing.
    func acquire() async -> Bool {
        await withCheckedContinuation { continuation in
            let resume: Bool? = state.withLock { state in
                if state.closed { return false }
                if state.free > 0 {
                    state.free -= 1
                    return true
                }
                state.waiter = continuation
                return nil
            }
            if let resume { continuation.resume(returning: resume) }
        }
    }

    /// Gives a slot back (an answer was written, or there was none to write).
    func release() {
        let waiter: CheckedContinuation<Bool, Never>? = state.withLock { state in
            if let waiter = state.waiter {
                state.waiter = nil
                return waiter  // the slot passes straight to the waiting reader
            }
            state.free += 1
            return nil
        }
        waiter?.resume(returning: true)
    }

    /// The writer is gone: a waiting reader stops.
    func close() {
        let waiter = state.withLock { state in
            state.closed = true
            defer { state.waiter = nil }
            return state.waiter
        }
        waiter?.resume(returning: false)
    }
}
