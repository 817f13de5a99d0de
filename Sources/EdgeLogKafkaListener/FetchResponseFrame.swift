import EdgeLogKafka
import EdgeLogStorage
import NIOCore
import EdgeLogCore

/// A Fetch response whose record sets stay in the segment files: the frame is the generated
/// codec's bytes with each stored span spliced in where its records go, so the connection can
/// send the records with sendfile instead of reading them into memory.
///
/// Only the framing around the partitions is written here; each partition goes through the
/// generated `PartitionData.write` with its records left out. That writes the records field
/// last (after it come only the tagged fields, which this broker never sets), so the null
/// marker at its end is replaced by the span's length and the span. A test checks the result
/// against the generated encoder at every version the broker serves.
package enum FetchResponseFrame {
    static func make(
        _ response: FetchResponse, spans: [[StoredSpan?]], correlationId: Int32, version: Int16
    ) throws(KafkaCodecError) -> ResponseFrame {
        let flexible = version >= 12
        var pieces: [ResponseFrame.Piece] = []
        var buffer = ByteBuffer()
        buffer.writeInteger(Int32(0))  // frame size, set at the end
        KafkaResponseHeader(correlationId: correlationId)
            .write(to: &buffer, headerVersion: FetchResponse.responseHeaderVersion(version))
        if version >= 1 { buffer.writeInteger(response.throttleTimeMs) }
        if version >= 7 {
            buffer.writeInteger(response.errorCode)
            buffer.writeInteger(response.sessionId)
        }
        try buffer.writeKafkaArrayLength(response.responses.count, flexible: flexible, nullable: false, field: "responses")
        for (topicIndex, topic) in response.responses.enumerated() {
            if version >= 13 {
                buffer.writeKafkaUUID(topic.topicId)
            } else {
                try buffer.writeKafkaString(topic.topic, flexible: flexible, nullable: false, field: "topic")
            }
            try buffer.writeKafkaArrayLength(topic.partitions.count, flexible: flexible, nullable: false, field: "partitions")
            for (partitionIndex, partition) in topic.partitions.enumerated() {
                guard let span = spans[topicIndex][partitionIndex] else {
                    try partition.write(to: &buffer, version: version)
                    continue
                }
                assert(
                    partition.divergingEpoch == .init() && partition.currentLeader == .init() && partition.snapshotId == .init(),
                    "tagged partition fields would follow the records")
                var withoutRecords = partition
                withoutRecords.records = nil
                try withoutRecords.write(to: &buffer, version: version)
                // A null record set is -1 as Int32, or 0 as a compact length followed by the
                // (empty) tagged-field count.
                buffer.moveWriterIndex(to: buffer.writerIndex - (flexible ? 2 : 4))
                buffer.writeKafkaBytesLength(span.length, flexible: flexible)
                pieces.append(.bytes(buffer))
                pieces.append(.stored(span))
                buffer = ByteBuffer()
                if flexible { buffer.writeKafkaUnsignedVarint(0) }
            }
            if flexible { buffer.writeKafkaUnsignedVarint(0) }
        }
        if flexible { buffer.writeKafkaUnsignedVarint(0) }
        pieces.append(.bytes(buffer))
        var frame = ResponseFrame(pieces: pieces)
        let size = frame.byteCount - 4
        guard case .bytes(var first) = frame.pieces[0] else { preconditionFailure("the frame starts with its size") }
        first.setInteger(Int32(size), at: first.readerIndex)
        frame.pieces[0] = .bytes(first)
        return frame
    }
}
