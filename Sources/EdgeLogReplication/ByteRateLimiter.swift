import Synchronization
import EdgeLogCore

/// A token bucket over bytes, for metered uplinks: at most `bytesPerSecond` on average, with
/// one second's worth of burst. A request larger than the bucket goes into debt and the next
/// ones wait it off, so the average holds for any request size.
final class ByteRateLimiter: Sendable {
    let bytesPerSecond: Int
    private let state: Mutex<(tokens: Double, refilled: ContinuousClock.Instant)>

    init(bytesPerSecond: Int) {
        precondition(bytesPerSecond > 0)
        self.bytesPerSecond = bytesPerSecond
        self.state = Mutex((Double(bytesPerSecond), ContinuousClock.now))
    }

    /// Takes `bytes` from the bucket, sleeping first if it is in debt.
    func acquire(_ bytes: Int) async throws {
        let rate = Double(bytesPerSecond)
        let wait = state.withLock { state -> Double in
            let now = ContinuousClock.now
            let elapsed = state.refilled.duration(to: now)
            let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
            state.tokens = min(rate, state.tokens + seconds * rate)
            state.refilled = now
            let debt = state.tokens < 0 ? -state.tokens / rate : 0
            state.tokens -= Double(bytes)
            return debt
        }
        if wait > 0 { try await Task.sleep(for: .milliseconds(Int(wait * 1000) + 1)) }
    }
}
