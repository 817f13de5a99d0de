import Synchronization

/// Wakes readers parked at a partition's log end when the writer commits more: the
/// replicator's shippers and (later) Kafka long-poll fetches, without polling.
final class CommitSignal: Sendable {
    private struct State {
        var nextWaiter: UInt64 = 0
        var waiters: [UInt64: CheckedContinuation<Void, Never>] = [:]
        /// Callbacks of waits that span several partitions (`PartitionLog.waitForAny`).
        var wakers: [UInt64: @Sendable () -> Void] = [:]
        /// Waiters whose timeout or cancellation came before they parked.
        var expired: Set<UInt64> = []
    }

    private let state = Mutex(State())

    /// Called by the writer after every commit; cheap when nobody waits.
    func notifyAll() {
        let (waiters, wakers) = state.withLock { state -> ([UInt64: CheckedContinuation<Void, Never>], [UInt64: @Sendable () -> Void]) in
            guard !state.waiters.isEmpty || !state.wakers.isEmpty else { return ([:], [:]) }
            defer {
                state.waiters = [:]
                state.wakers = [:]
            }
            return (state.waiters, state.wakers)
        }
        for waiter in waiters.values { waiter.resume() }
        for waker in wakers.values { waker() }
    }

    /// Calls `wake` once at the next commit and returns its registration, or returns nil at
    /// once when `isReady()` already holds (checked under the lock, as in `wait`).
    func subscribe(isReady: () -> Bool, wake: @escaping @Sendable () -> Void) -> UInt64? {
        state.withLock { state in
            guard !isReady() else { return nil }
            state.nextWaiter += 1
            state.wakers[state.nextWaiter] = wake
            return state.nextWaiter
        }
    }

    func unsubscribe(_ id: UInt64) {
        state.withLock { _ = $0.wakers.removeValue(forKey: id) }
    }

    /// Returns once `isReady()` holds, after `timeout`, or when the task is cancelled,
    /// whichever comes first. `isReady` is checked under the signal's lock, so a commit that
    /// lands between the check and the wait still wakes this waiter.
    func wait(timeout: Duration, isReady: () -> Bool) async {
        let id = state.withLock { state -> UInt64 in
            state.nextWaiter += 1
            return state.nextWaiter
        }
        let timer = Task { [weak self] in
            try? await Task.sleep(for: timeout)
            self?.resume(id)
        }
        defer {
            timer.cancel()
            state.withLock { _ = $0.expired.remove(id) }
        }
        await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                let parked = state.withLock { state -> Bool in
                    guard !isReady(), !Task.isCancelled, !state.expired.contains(id) else { return false }
                    state.waiters[id] = continuation
                    return true
                }
                if !parked { continuation.resume() }
            }
        } onCancel: {
            resume(id)
        }
    }

    /// Wakes waiter `id`, or, when it has not parked yet, marks it so it never does.
    private func resume(_ id: UInt64) {
        state.withLock { state -> CheckedContinuation<Void, Never>? in
            guard let waiter = state.waiters.removeValue(forKey: id) else {
                state.expired.insert(id)
                return nil
            }
            return waiter
        }?.resume()
    }
}

/// A one-time wake-up that any number of signals may fire, before or after it is awaited.
final class Wakeup: Sendable {
    private let state = Mutex<(fired: Bool, waiter: CheckedContinuation<Void, Never>?)>((false, nil))

    func fire() {
        state.withLock { state -> CheckedContinuation<Void, Never>? in
            state.fired = true
            defer { state.waiter = nil }
            return state.waiter
        }?.resume()
    }

    func wait() async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let fired = state.withLock { state -> Bool in
                if !state.fired { state.waiter = continuation }
                return state.fired
            }
            if fired { continuation.resume() }
        }
    }
}
