public import EdgeLogStorage
public import NIOCore

/// A processor's snapshot file (`<data>/.streams/<name>/snapshot`): its whole state, where it
/// is in each input partition, and the commit-topic offset from which later commits are to be
/// replayed. Written atomically (temporary file, fsync, rename, directory fsync) and checked
/// by a CRC32C, so a reader sees the previous snapshot or the new one, never a mix.
public struct ProcessorSnapshot: Sendable {
    public struct Position: Sendable, Equatable, Hashable {
        public var topic: String
        public var partition: Int32
        public var nextOffset: Int64
    }

    /// The query the state belongs to: a snapshot of another query is not restored.
    public var query: String
    /// Commits from this offset of the commit topic on came after this snapshot.
    public var nextCommitOffset: Int64
    public var positions: [Position]
    public var state: ByteBuffer

    static let magic: UInt32 = 0x454C_5353  // "ELSS"
    static let formatVersion: UInt8 = 1

    public init(query: String, nextCommitOffset: Int64, positions: [Position], state: ByteBuffer) {
        self.query = query
        self.nextCommitOffset = nextCommitOffset
        self.positions = positions
        self.state = state
    }

    public func encoded() -> ByteBuffer {
        var body = ByteBuffer()
        body.reserveCapacity(state.readableBytes + 256)
        body.writeStateText(query)
        body.writeStateInt(nextCommitOffset)
        body.writeStateInt(Int64(positions.count))
        for position in positions {
            body.writeStateText(position.topic)
            body.writeStateInt(Int64(position.partition))
            body.writeStateInt(position.nextOffset)
        }
        body.writeStateInt(Int64(state.readableBytes))
        body.writeImmutableBuffer(state)
        var file = ByteBuffer()
        file.reserveCapacity(body.readableBytes + 9)
        file.writeInteger(Self.magic)
        file.writeInteger(Self.formatVersion)
        file.writeInteger(CRC32C.checksum(body))
        file.writeImmutableBuffer(body)
        return file
    }

    public init(decoding bytes: ByteBuffer) throws(StateDecodingError) {
        var buffer = bytes
        guard buffer.readInteger(as: UInt32.self) == Self.magic else { throw StateDecodingError("not a processor snapshot") }
        guard let version = buffer.readInteger(as: UInt8.self), version == Self.formatVersion else {
            throw StateDecodingError("unknown snapshot format")
        }
        guard let crc = buffer.readInteger(as: UInt32.self), crc == CRC32C.checksum(buffer) else {
            throw StateDecodingError("snapshot checksum mismatch")
        }
        query = try buffer.readStateText()
        nextCommitOffset = try buffer.readStateInt()
        positions = []
        for _ in 0..<(try buffer.readStateCount(max: 1 << 16)) {
            let topic = try buffer.readStateText()
            let partition = try ProcessorCommit.partition(&buffer)
            positions.append(Position(topic: topic, partition: partition, nextOffset: try buffer.readStateInt()))
        }
        let length = try buffer.readStateCount(max: Int(Int32.max))
        guard let state = buffer.readSlice(length: length), buffer.readableBytes == 0 else {
            throw StateDecodingError("snapshot state truncated")
        }
        self.state = state
    }

    public func write(to path: String) throws(StorageError) {
        try FileSystem.writeAtomically(encoded(), to: path)
    }

    /// The snapshot at `path`; nil when there is none. Unreadable or corrupt files throw.
    public static func read(from path: String) throws -> ProcessorSnapshot? {
        guard FileSystem.exists(path) else { return nil }
        let file = try LogFile(readOnlyPath: path)
        let size = try file.size()
        return try ProcessorSnapshot(decoding: file.read(at: 0, length: Int(size)))
    }
}
