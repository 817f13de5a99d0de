import EdgeLogStorage
import EdgeLogCore

/// One group's commit, handed from the task that appends it to the network thread that waits
/// for it before the group's PUBACKs may go out. The thread waits with a deadline, so it can
/// keep the connection alive meanwhile (see `MQTTClient`).
final class MQTTGroupCommit: @unchecked Sendable {
    private let condition = BlockingCondition()
    // Under `condition`.
    private var outcome: MQTTClient.Disposition? = nil

    /// A commit that is already decided.
    static func finished(_ outcome: MQTTClient.Disposition) -> MQTTGroupCommit {
        let commit = MQTTGroupCommit()
        commit.finish(outcome)
        return commit
    }

    /// `.acknowledge` once every record of the group is committed (or dropped for good),
    /// `.refuse` when the broker must deliver the group again.
    func finish(_ outcome: MQTTClient.Disposition) {
        condition.withLock {
            self.outcome = outcome
            condition.broadcast()
        }
    }

    /// Blocks the calling thread until `finish` or until the monotonic clock reaches
    /// `deadlineNanos`; nil when the commit is still going on.
    func wait(untilNanos deadlineNanos: UInt64) -> MQTTClient.Disposition? {
        condition.withLock {
            while outcome == nil && BlockingCondition.nowNanos() < deadlineNanos {
                condition.wait(untilNanos: deadlineNanos)
            }
            return outcome
        }
    }
}
