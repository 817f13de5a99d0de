/// When appended data is made durable, and so when an append is acknowledged.
public enum FlushPolicy: Sendable, Hashable, Codable, CustomStringConvertible {
    /// Every group of appends is fsynced before any of them is acknowledged: one fsync covers
    /// everything that arrived while the previous one ran (group commit). Survives power loss.
    case always
    /// Appends are acknowledged once written to the OS and fsynced at most `milliseconds`
    /// later: survives a crash of edgelog, not a power loss inside that window.
    case interval(milliseconds: Int64)

    public var description: String {
        switch self {
        case .always: "always"
        case .interval(let milliseconds): "interval(\(milliseconds) ms)"
        }
    }
}

/// Settings of a topic's partitions. Every field has a default fit for a small edge box.
public struct LogConfig: Sendable, Hashable, Codable {
    /// A segment rolls when it would grow past this size.
    public var segmentBytes: Int64 = 64 * 1024 * 1024
    /// …or when its first batch is older than this.
    public var segmentMs: Int64 = 24 * 3600 * 1000
    /// Bytes of log between two sparse index entries.
    public var indexIntervalBytes: Int = 4096
    /// Largest batch the appender builds, and the largest single record it accepts.
    public var maxBatchBytes: Int = 1024 * 1024
    /// How long the appender waits for more records before it writes a group that is not full.
    /// 0: write as soon as the previous group is done (group commit still batches everything
    /// that arrives during a write and fsync).
    public var lingerMicroseconds: Int64 = 0
    public var codec: CompressionCodec = .gzip
    /// nil: the codec's fast default (gzip 1, zstd 3, lz4 0).
    public var compressionLevel: Int32? = nil
    public var flush: FlushPolicy = .always
    /// Segments whose newest record is older than this are deleted; nil keeps them.
    public var retentionMs: Int64? = 7 * 24 * 3600 * 1000
    /// Oldest segments are deleted while the partition is larger than this; nil: no limit.
    public var retentionBytes: Int64? = nil
    /// How often the recovery point is written while appends flow.
    public var checkpointIntervalMs: Int64 = 1000

    public init() {}

    // Decoding takes the default for every missing key, so a topic file written by an older
    // edgelog still opens.
    private enum CodingKeys: String, CodingKey {
        case segmentBytes, segmentMs, indexIntervalBytes, maxBatchBytes, lingerMicroseconds, codec
        case compressionLevel, flush, retentionMs, retentionBytes, checkpointIntervalMs
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        var config = LogConfig()
        config.segmentBytes = try container.decodeIfPresent(Int64.self, forKey: .segmentBytes) ?? config.segmentBytes
        config.segmentMs = try container.decodeIfPresent(Int64.self, forKey: .segmentMs) ?? config.segmentMs
        config.indexIntervalBytes =
            try container.decodeIfPresent(Int.self, forKey: .indexIntervalBytes) ?? config.indexIntervalBytes
        config.maxBatchBytes = try container.decodeIfPresent(Int.self, forKey: .maxBatchBytes) ?? config.maxBatchBytes
        config.lingerMicroseconds =
            try container.decodeIfPresent(Int64.self, forKey: .lingerMicroseconds) ?? config.lingerMicroseconds
        config.codec = try container.decodeIfPresent(CompressionCodec.self, forKey: .codec) ?? config.codec
        config.compressionLevel = try container.decodeIfPresent(Int32.self, forKey: .compressionLevel)
        config.flush = try container.decodeIfPresent(FlushPolicy.self, forKey: .flush) ?? config.flush
        config.retentionMs = try container.decodeIfPresent(Int64.self, forKey: .retentionMs)
        config.retentionBytes = try container.decodeIfPresent(Int64.self, forKey: .retentionBytes)
        config.checkpointIntervalMs =
            try container.decodeIfPresent(Int64.self, forKey: .checkpointIntervalMs) ?? config.checkpointIntervalMs
        self = config
    }
}

extension CompressionCodec: Codable {}
