#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// A pthread mutex with one condition variable on the monotonic clock.
///
/// MQTT ingest has threads that must really block: libmosquitto calls its callbacks on the
/// network thread of each connection, outside Swift concurrency, and `ack = durable` and the
/// `ack = fast` queue's backpressure both hold that thread. Tasks wake them through this.
///
/// Thread safety: every method may be called from any thread; `wait` and `wait(timeoutNanos:)`
/// must be called with the lock held (inside `withLock`).
final class MQTTCondition: @unchecked Sendable {
    private let mutex = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
    private let condition = UnsafeMutablePointer<pthread_cond_t>.allocate(capacity: 1)

    init() {
        pthread_mutex_init(mutex, nil)
        var attributes = pthread_condattr_t()
        pthread_condattr_init(&attributes)
        pthread_condattr_setclock(&attributes, CLOCK_MONOTONIC)
        pthread_cond_init(condition, &attributes)
        pthread_condattr_destroy(&attributes)
    }

    deinit {
        pthread_cond_destroy(condition)
        pthread_mutex_destroy(mutex)
        condition.deallocate()
        mutex.deallocate()
    }

    func withLock<T>(_ body: () throws -> T) rethrows -> T {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        return try body()
    }

    /// Waits for a signal; the lock must be held.
    func wait() { pthread_cond_wait(condition, mutex) }

    /// Waits for a signal or at most `timeoutNanos`; the lock must be held. Returns early on a
    /// signal or a spurious wake-up, so callers re-check their predicate and deadline.
    func wait(timeoutNanos: UInt64) {
        var now = timespec()
        clock_gettime(CLOCK_MONOTONIC, &now)
        let deadlineNanos = UInt64(now.tv_sec) * 1_000_000_000 + UInt64(now.tv_nsec) + timeoutNanos
        var deadline = timespec(
            tv_sec: Int(deadlineNanos / 1_000_000_000), tv_nsec: Int(deadlineNanos % 1_000_000_000))
        pthread_cond_timedwait(condition, mutex, &deadline)
    }

    func signal() { pthread_cond_signal(condition) }
    func broadcast() { pthread_cond_broadcast(condition) }

    /// Monotonic nanoseconds, for deadlines.
    static func nowNanos() -> UInt64 {
        var now = timespec()
        clock_gettime(CLOCK_MONOTONIC, &now)
        return UInt64(now.tv_sec) * 1_000_000_000 + UInt64(now.tv_nsec)
    }
}
