import Synchronization

/// What happens when the data directory reaches its disk budget.
public enum OverflowPolicy: String, Sendable, Codable, CaseIterable {
    /// New appends fail with `StorageError.diskBudgetExceeded` (HTTP 507/429, MQTT stops
    /// acknowledging) until retention or replication frees space.
    case reject
    /// The oldest segments of any partition are deleted to make room, never below a
    /// partition's retention floor (data an upstream still needs); when nothing can go,
    /// appends are rejected as with `reject`.
    case dropOldest = "drop-oldest"
}

/// The byte budget of the whole data directory, shared by every partition's appender.
public final class DiskBudget: Sendable {
    public let limitBytes: Int64
    public let policy: OverflowPolicy
    private let used: Atomic<Int64>
    /// Frees at least the given bytes by deleting old segments; returns what it freed.
    private let reclaimer: Mutex<(@Sendable (Int64) -> Int64)?>

    public init(limitBytes: Int64, policy: OverflowPolicy, usedBytes: Int64 = 0) {
        precondition(limitBytes > 0, "a disk budget must be positive")
        self.limitBytes = limitBytes
        self.policy = policy
        self.used = Atomic(usedBytes)
        self.reclaimer = Mutex(nil)
    }

    public var usedBytes: Int64 { used.load(ordering: .relaxed) }

    func setReclaimer(_ reclaimer: @escaping @Sendable (Int64) -> Int64) {
        self.reclaimer.withLock { $0 = reclaimer }
    }

    /// Accounts for `bytes` about to be written, making room first under `dropOldest`.
    func reserve(_ bytes: Int64) throws(StorageError) {
        var current = used.load(ordering: .relaxed)
        if current + bytes > limitBytes, policy == .dropOldest, let reclaim = reclaimer.withLock({ $0 }) {
            _ = reclaim(current + bytes - limitBytes)
            current = used.load(ordering: .relaxed)
        }
        guard current + bytes <= limitBytes else {
            throw .diskBudgetExceeded(usedBytes: current, budgetBytes: limitBytes)
        }
        used.add(bytes, ordering: .relaxed)
    }

    func release(_ bytes: Int64) {
        used.subtract(bytes, ordering: .relaxed)
    }

    /// Sets the count to what the data directory really uses (at open, and after each
    /// retention pass, so that index files and checkpoints do not drift out of the count).
    func reset(toUsedBytes bytes: Int64) {
        used.store(bytes, ordering: .relaxed)
    }
}
