import EdgeLogCore
/// Exponential backoff with full jitter (AWS's "full jitter"), so a fleet of edges that lost
/// the same uplink does not come back in lockstep.
struct RetryBackoff {
    let minimumMs: Int
    let maximumMs: Int
    private(set) var attempts = 0

    init(minimumMs: Int, maximumMs: Int) {
        self.minimumMs = minimumMs
        self.maximumMs = max(minimumMs, maximumMs)
    }

    /// The next delay: uniformly random up to min(max, min * 2^attempts).
    mutating func next() -> Duration {
        let ceiling = min(maximumMs, minimumMs << min(attempts, 20))
        attempts += 1
        return .milliseconds(Int.random(in: minimumMs...max(minimumMs, ceiling)))
    }

    mutating func reset() { attempts = 0 }
}
