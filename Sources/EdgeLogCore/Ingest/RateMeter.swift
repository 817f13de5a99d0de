import EdgeLogStorage
import Synchronization

/// Records per second over the last few seconds, from per-second buckets (one lock per ingest
/// request, not per record).
final class RateMeter: Sendable {
    private struct Buckets {
        var seconds = [Int64](repeating: -1, count: 16)
        var counts = [Int](repeating: 0, count: 16)
    }

    private let buckets = Mutex(Buckets())

    func add(_ count: Int, nowMs: Int64 = wallClockMs()) {
        let second = nowMs / 1000
        let slot = Int(second % 16)
        buckets.withLock {
            if $0.seconds[slot] != second {
                $0.seconds[slot] = second
                $0.counts[slot] = 0
            }
            $0.counts[slot] += count
        }
    }

    /// Average per second over the `window` full seconds before the current one.
    func perSecond(window: Int = 10, nowMs: Int64 = wallClockMs()) -> Double {
        let current = nowMs / 1000
        return buckets.withLock { buckets in
            var total = 0
            for second in (current - Int64(window))..<current {
                let slot = Int(second % 16)
                if buckets.seconds[slot] == second { total += buckets.counts[slot] }
            }
            return Double(total) / Double(window)
        }
    }
}
