import EdgeLogKafka
import EdgeLogStorage
import Logging
import NIOCore
import Synchronization
import EdgeLogCore

/// The shipper's state and last error as the status reports them, and its small helpers.
extension PartitionShipper {
    static func increment(_ sequence: Int32, by records: Int32) -> Int32 {
        ProducerSequence.add(sequence, records)
    }

    func setState(_ state: State) {
        progress.withLock { if $0.state != state { $0.state = state } }
    }

    func record(_ error: String, state: State) {
        let repeated = progress.withLock { progress -> Bool in
            let repeated = progress.lastError == error
            progress.lastError = error
            progress.lastErrorMs = wallClockMs()
            progress.state = state
            return repeated
        }
        if repeated {
            logger.debug("replication: \(error)")
        } else {
            logger.warning("replication: \(error)")
        }
    }

    func sleep(_ duration: Duration) async {
        try? await Task.sleep(for: duration)
    }
}
