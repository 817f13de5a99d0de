import EdgeLogKafka
import EdgeLogStorage
import Logging
import NIOCore
import Synchronization
import EdgeLogCore

/// What the shipper reads from the local log, and where it resumes.
extension PartitionShipper {
    /// Where shipping resumes: the acknowledged offset, moved up to the log start when
    /// retention got there first, or down to the log end after a local truncation.
    func resumeOffset() throws -> Int64 {
        let offsets = log.offsets
        return progress.withLock { progress -> Int64 in
            if progress.acked < offsets.logStartOffset {
                progress.skippedRecords += offsets.logStartOffset - progress.acked
                logger.warning(
                    "retention deleted offsets \(progress.acked)..<\(offsets.logStartOffset) before they were replicated (upstream not required)")
                progress.acked = offsets.logStartOffset
            } else if progress.acked > offsets.logEndOffset {
                logger.warning("checkpoint \(progress.acked) is past the log end \(offsets.logEndOffset) (local log truncated)")
                progress.acked = offsets.logEndOffset
            }
            return progress.acked
        }
    }

    func readLog(from offset: Int64) throws -> ByteBuffer {
        do {
            // Under a rate limit a request holds at most one second of it (one batch when a
            // batch is larger), so a metered uplink never sees a burst of a whole request.
            return try log.read(from: offset, maxBytes: min(upstream.maxRequestBytes, limiter?.bytesPerSecond ?? .max))
        } catch {
            if case .offsetOutOfRange = error {
                let offsets = log.offsets
                if offset < offsets.logStartOffset { throw Failure.storage("offset \(offset) deleted by retention before it was shipped") }
                return ByteBuffer()
            }
            throw Failure.storage("\(error)")
        }
    }
}
