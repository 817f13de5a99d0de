extension PartitionLog {
    /// The file of a named consumer's checkpoint (a replicator's upstream, a stream processor).
    public func consumerCheckpointPath(named name: String) throws(StorageError) -> String {
        do { try Topic.validate(name: name) } catch {
            throw .invalidTopicName(name, reason: "not a valid checkpoint name")
        }
        return directory + "/consumer-\(name).checkpoint"
    }

    /// The next offset the named consumer has to process, or nil when it has no checkpoint.
    /// A corrupt file throws `.corruptCheckpoint`; the caller should restart from the log start
    /// (re-sending is safe under at-least-once, skipping is not).
    public func consumerCheckpoint(named name: String) throws(StorageError) -> Int64? {
        try Checkpoint.read(from: consumerCheckpointPath(named: name))?["offset"]
    }

    /// Atomically records that the named consumer is done with everything below `offset`.
    public func writeConsumerCheckpoint(named name: String, offset: Int64) throws(StorageError) {
        try Checkpoint(["offset": offset]).write(to: consumerCheckpointPath(named: name))
    }
}
