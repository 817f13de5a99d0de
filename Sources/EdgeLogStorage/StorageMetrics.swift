import Metrics

/// The storage engine's metrics, created once (on first use, so after the application has
/// bootstrapped its metrics backend) with fixed dimensions.
enum StorageMetrics {
    /// Time of each fdatasync of a group commit or interval flush.
    static let fsyncDuration = Timer(label: "edgelog_fsync_seconds", preferredDisplayUnit: .seconds)
    /// Bytes written per group commit (one write, one fsync).
    static let groupBytes = Recorder(label: "edgelog_append_group_bytes", aggregate: true)
    /// Records per group commit.
    static let groupRecords = Recorder(label: "edgelog_append_group_records", aggregate: true)
    static let appendedBytes = Counter(label: "edgelog_append_bytes_total")
    static let fencedPartitions = Counter(label: "edgelog_partitions_fenced_total")
}
