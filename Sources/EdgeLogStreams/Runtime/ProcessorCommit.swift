public import NIOCore

/// One record of a processor's commit topic (`_edgelog.streams.<name>`), appended and made
/// durable before the outputs it announces are appended.
///
/// It holds what a processor's output depends on besides the log itself: which input records
/// were processed in which order (`steps`, interleaving partitions as they were read) and at
/// which wall clock (idle inputs, future event times). Processing is deterministic, so the
/// state after a commit follows from the state before it and its steps, and recovery replays
/// them from the last snapshot. `outputs` says where each output partition ended before this
/// commit's records were appended, so recovery can tell which of them made it and append
/// exactly the rest.
public struct ProcessorCommit: Sendable, Equatable {
    public enum Step: Sendable, Equatable {
        /// Records `from..<to` of an input partition, each processed at `wallClockMs`.
        case records(topic: String, partition: Int32, from: Int64, to: Int64, wallClockMs: Int64)
        /// The partition was idle: its watermark followed the wall clock.
        case idle(topic: String, partition: Int32, wallClockMs: Int64)
    }

    public struct OutputRange: Sendable, Equatable {
        public var topic: String
        public var partition: Int32
        /// The partition's end offset before this commit's records.
        public var endBefore: Int64
        public var count: Int64
    }

    public var steps: [Step]
    public var outputs: [OutputRange]

    static let formatVersion: UInt8 = 1

    public func encoded() -> ByteBuffer {
        var buffer = ByteBuffer()
        buffer.writeStateByte(Self.formatVersion)
        buffer.writeStateInt(Int64(steps.count))
        for step in steps {
            switch step {
            case .records(let topic, let partition, let from, let to, let wallClockMs):
                buffer.writeStateByte(1)
                buffer.writeStateText(topic)
                buffer.writeStateInt(Int64(partition))
                buffer.writeStateInt(from)
                buffer.writeStateInt(to)
                buffer.writeStateInt(wallClockMs)
            case .idle(let topic, let partition, let wallClockMs):
                buffer.writeStateByte(2)
                buffer.writeStateText(topic)
                buffer.writeStateInt(Int64(partition))
                buffer.writeStateInt(wallClockMs)
            }
        }
        buffer.writeStateInt(Int64(outputs.count))
        for output in outputs {
            buffer.writeStateText(output.topic)
            buffer.writeStateInt(Int64(output.partition))
            buffer.writeStateInt(output.endBefore)
            buffer.writeStateInt(output.count)
        }
        return buffer
    }

    public init(steps: [Step], outputs: [OutputRange]) {
        self.steps = steps
        self.outputs = outputs
    }

    public init(decoding bytes: ByteBuffer) throws(StateDecodingError) {
        var buffer = bytes
        let version = try buffer.readStateByte()
        guard version == Self.formatVersion else { throw StateDecodingError("commit format \(version) is not \(Self.formatVersion)") }
        steps = []
        for _ in 0..<(try buffer.readStateCount()) {
            switch try buffer.readStateByte() {
            case 1:
                let topic = try buffer.readStateText()
                let partition = try Self.partition(&buffer)
                steps.append(.records(
                    topic: topic, partition: partition, from: try buffer.readStateInt(), to: try buffer.readStateInt(),
                    wallClockMs: try buffer.readStateInt()))
            case 2:
                let topic = try buffer.readStateText()
                let partition = try Self.partition(&buffer)
                steps.append(.idle(topic: topic, partition: partition, wallClockMs: try buffer.readStateInt()))
            case let tag:
                throw StateDecodingError("unknown step tag \(tag)")
            }
        }
        outputs = []
        for _ in 0..<(try buffer.readStateCount()) {
            let topic = try buffer.readStateText()
            let partition = try Self.partition(&buffer)
            outputs.append(OutputRange(topic: topic, partition: partition, endBefore: try buffer.readStateInt(), count: try buffer.readStateInt()))
        }
        guard buffer.readableBytes == 0 else { throw StateDecodingError("\(buffer.readableBytes) bytes after the commit") }
    }

    static func partition(_ buffer: inout ByteBuffer) throws(StateDecodingError) -> Int32 {
        guard let partition = Int32(exactly: try buffer.readStateInt()), partition >= 0 else {
            throw StateDecodingError("partition out of range")
        }
        return partition
    }
}
