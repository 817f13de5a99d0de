import EdgeLogStorage

/// The hand-over of one append's result from the task that ran it to the network thread that
/// waits for it. Reused for every message of one connection (which handles one at a time).
final class MQTTCommitWaiter: @unchecked Sendable {
    private let condition = BlockingCondition()
    private var isDone = false
    private var error: IngestError? = nil

    func reset() { condition.withLock { isDone = false; error = nil } }

    func finish(_ error: IngestError?) {
        condition.withLock {
            self.error = error
            isDone = true
            condition.signal()
        }
    }

    /// Blocks the calling thread until `finish`; the error, or nil after a commit.
    func wait() -> IngestError? {
        condition.withLock {
            while !isDone { condition.wait() }
            return error
        }
    }
}
