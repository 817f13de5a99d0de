/// A pthread mutex with one condition variable on the monotonic clock, for threads that must
/// really block outside Swift concurrency: the partition appenders and the threads waiting on
/// them, and libmosquitto's network threads in MQTT ingest.
///
/// Thread safety: every method may be called from any thread; the `wait` methods must be
/// called with the lock held.
public final class BlockingCondition: @unchecked Sendable {
    private let mutex = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
    private let condition = UnsafeMutablePointer<pthread_cond_t>.allocate(capacity: 1)

    public init() {
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

    public func lock() { pthread_mutex_lock(mutex) }
    public func unlock() { pthread_mutex_unlock(mutex) }

    public func withLock<T>(_ body: () throws -> T) rethrows -> T {
        lock()
        defer { unlock() }
        return try body()
    }

    /// Waits for a signal; the lock must be held.
    public func wait() { pthread_cond_wait(condition, mutex) }

    /// Waits for a signal or until the monotonic clock reaches `deadlineNanos`.
    public func wait(untilNanos deadlineNanos: UInt64) {
        var deadline = timespec(tv_sec: Int(deadlineNanos / 1_000_000_000), tv_nsec: Int(deadlineNanos % 1_000_000_000))
        pthread_cond_timedwait(condition, mutex, &deadline)
    }

    /// Waits for a signal or at most `timeoutNanos`; returns early on a signal or a spurious
    /// wake-up, so callers re-check their predicate and deadline.
    public func wait(timeoutNanos: UInt64) {
        wait(untilNanos: monotonicNanos() + timeoutNanos)
    }

    /// Monotonic nanoseconds, for deadlines.
    public static func nowNanos() -> UInt64 { monotonicNanos() }

    public func signal() { pthread_cond_signal(condition) }
    public func broadcast() { pthread_cond_broadcast(condition) }
}

/// Monotonic nanoseconds, for deadlines.
func monotonicNanos() -> UInt64 {
    var now = timespec()
    clock_gettime(CLOCK_MONOTONIC, &now)
    return UInt64(now.tv_sec) * 1_000_000_000 + UInt64(now.tv_nsec)
}

/// Wall-clock milliseconds since the Unix epoch, for record timestamps and retention.
public func wallClockMs() -> Int64 {
    var now = timespec()
    clock_gettime(CLOCK_REALTIME, &now)
    return Int64(now.tv_sec) * 1000 + Int64(now.tv_nsec) / 1_000_000
}
