extension PartitionLog {
    /// A partition fenced after a failed write or fsync (what reached the disk was unknown, so
    /// it refused appends) recovers in place: recovery runs again on its files, cutting what did
    /// not make it to them whole, and appends are accepted again. Nothing acknowledged is lost:
    /// acknowledged groups were synced before the failure.
    ///
    /// Returns nil when the partition is not fenced (or changed meanwhile: try again later);
    /// throws when recovery still fails (a read-only or failing disk), leaving it fenced.
    /// Safe beside the appender: a fenced partition's appender fails every group without
    /// touching its files, and only the appender fences.
    public func recoverFromFence() throws(StorageError) -> RecoveryReport? {
        let firstBase = state.withLock { $0.fenceReason == nil ? nil : $0.segments.first?.baseOffset }
        guard let firstBase else { return nil }
        let (fresh, report) = try Self.recoverFiles(
            topic: topic, partition: partition, directory: directory, config: config, logger: logger)
        let reason: String? = state.withLock { state in
            // Retention deleted a segment meanwhile: the scan may name files that are gone.
            guard let reason = state.fenceReason, state.segments.first?.baseOffset == firstBase else { return nil }
            state.segments = fresh.segments
            state.logStartOffset = fresh.logStartOffset
            state.committedOffset = fresh.committedOffset
            state.committedPosition = fresh.committedPosition
            state.recoveryPoint = fresh.recoveryPoint
            state.checkpointedLogStart = fresh.checkpointedLogStart
            state.fenceReason = nil
            return reason
        }
        guard let reason else { return nil }
        writeRecoveryPoint()
        commits.notifyAll()
        logger.notice(
            "partition accepts appends again: recovery after the failure succeeded",
            metadata: ["edgelog.fenced_because": "\(reason)", "edgelog.report": "\(report)"])
        return report
    }
}
