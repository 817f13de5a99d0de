public import EdgeLogStorage
import Foundation
import NIOCore

/// One loss marker: the record edgelog appends to `_edgelog.loss` whenever data is dropped by
/// policy or by a peer, so that a reader (upstream, after replication) can tell a gap from a
/// quiet sensor. Its value is JSON with these fields (null where unknown):
///
///     {"reason":"drop-oldest","topic":"sensors","partition":0,"first_offset":0,"last_offset":4095,
///      "count":4096,"from_ms":1764547200000,"to_ms":1764547260000,"detected_at_ms":1764547261234,
///      "unreplicated_from":1200,"detail":"the disk budget ..."}
public struct LossMarker: Sendable, Equatable {
    public enum Reason: String, Sendable, CaseIterable {
        /// The disk budget's `drop-oldest` policy deleted segments.
        case dropOldest = "drop-oldest"
        /// Retention deleted data an upstream (with `required = false`) had not acknowledged.
        case retentionUnreplicated = "retention-unreplicated"
        /// MQTT messages acknowledged with `ack = "fast"` and not yet written when the daemon died.
        case mqttFastAckCrash = "mqtt-fast-ack-crash"
        /// The MQTT broker's `$SYS` counters show it dropped messages (its queue for a client was full).
        case mqttBrokerDropped = "mqtt-broker-dropped"
        /// Recovery cut a torn or corrupt tail (or a whole segment) off a partition.
        case recoveryTruncated = "recovery-truncated"
        /// MQTT messages acknowledged to the broker that the log could never take (larger than
        /// the topic's maximum batch, routed to an invalid or missing topic), or, with
        /// `ack = "fast"`, still waiting for the log when the daemon stopped.
        case mqttUnstorable = "mqtt-unstorable"
    }

    public var reason: Reason
    public var topic: String?
    public var partition: Int32?
    public var firstOffset: Int64?
    public var lastOffset: Int64?
    /// Records lost, when known; `countAtMost` bounds it when only a bound is known.
    public var count: Int64?
    public var countAtMost: Int64?
    /// Wall-clock ms range of the lost data, as far as it is known.
    public var fromMs: Int64?
    public var toMs: Int64?
    public var detectedAtMs: Int64
    /// For deletions: the first deleted offset no upstream had acknowledged.
    public var unreplicatedFrom: Int64?
    public var detail: String

    public init(
        reason: Reason, topic: String? = nil, partition: Int32? = nil, firstOffset: Int64? = nil, lastOffset: Int64? = nil,
        count: Int64? = nil, countAtMost: Int64? = nil, fromMs: Int64? = nil, toMs: Int64? = nil,
        detectedAtMs: Int64 = wallClockMs(), unreplicatedFrom: Int64? = nil, detail: String
    ) {
        self.reason = reason
        self.topic = topic
        self.partition = partition
        self.firstOffset = firstOffset
        self.lastOffset = lastOffset
        self.count = count
        self.countAtMost = countAtMost
        self.fromMs = fromMs
        self.toMs = toMs
        self.detectedAtMs = detectedAtMs
        self.unreplicatedFrom = unreplicatedFrom
        self.detail = detail
    }

    /// A deletion reported by the log.
    public init(_ deleted: DeletedRecords, detectedAtMs: Int64 = wallClockMs()) {
        let reason: Reason = deleted.cause == .diskBudget ? .dropOldest : .retentionUnreplicated
        let detail =
            switch deleted.cause {
            case .diskBudget: "the disk budget (overflow = \"drop-oldest\") deleted the oldest segments to make room"
            case .retentionUnreplicated: "retention deleted data that an upstream with required = false had not acknowledged"
            }
        self.init(
            reason: reason, topic: deleted.topic, partition: deleted.partition, firstOffset: deleted.firstOffset,
            lastOffset: deleted.lastOffset, count: deleted.count, fromMs: deleted.fromTimestampMs >= 0 ? deleted.fromTimestampMs : nil,
            toMs: deleted.toTimestampMs >= 0 ? deleted.toTimestampMs : nil, detectedAtMs: detectedAtMs,
            unreplicatedFrom: deleted.unreplicatedFrom, detail: detail)
    }

    /// The record appended to `_edgelog.loss`: keyed by reason and partition, stamped when detected.
    var record: Record {
        var json = JSONWriter()
        json.beginObject()
        json.field("reason", reason.rawValue)
        json.key("topic")
        if let topic { json.string(topic) } else { json.null() }
        for (name, value) in [
            ("partition", partition.map(Int64.init)), ("first_offset", firstOffset), ("last_offset", lastOffset), ("count", count),
            ("count_at_most", countAtMost), ("from_ms", fromMs), ("to_ms", toMs), ("detected_at_ms", detectedAtMs),
            ("unreplicated_from", unreplicatedFrom),
        ] {
            json.key(name)
            if let value { json.number(value) } else { json.null() }
        }
        json.field("detail", detail)
        json.endObject()
        let key = topic.map { "\(reason.rawValue)|\($0)-\(partition ?? 0)" } ?? reason.rawValue
        return Record(timestamp: detectedAtMs, key: ByteBuffer(string: key), value: json.buffer)
    }
}
