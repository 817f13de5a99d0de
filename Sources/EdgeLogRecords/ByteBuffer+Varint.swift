public import NIOCore

/// The zigzag varints of Kafka records (signed, protobuf style), as opposed to the unsigned
/// varints of the protocol's flexible versions.
extension ByteBuffer {
    /// Bytes a zigzag varint of `value` takes on the wire.
    @inlinable
    public static func varintSize(_ value: Int64) -> Int {
        var zigzag = UInt64(bitPattern: (value << 1) ^ (value >> 63))
        var size = 1
        while zigzag >= 0x80 {
            zigzag >>= 7
            size += 1
        }
        return size
    }

    /// Writes `value` as a zigzag varint, returning the bytes written.
    @inlinable
    @discardableResult
    public mutating func writeVarint(_ value: Int64) -> Int {
        var zigzag = UInt64(bitPattern: (value << 1) ^ (value >> 63))
        var written = 0
        while zigzag >= 0x80 {
            self.writeInteger(UInt8(truncatingIfNeeded: zigzag) | 0x80)
            zigzag >>= 7
            written += 1
        }
        self.writeInteger(UInt8(truncatingIfNeeded: zigzag))
        return written + 1
    }

    /// Reads a zigzag varint of at most 10 bytes; nil when the bytes run out or the varint is
    /// longer than an Int64 can hold. The reader index only moves on success.
    @inlinable
    public mutating func readVarint() -> Int64? {
        var result: UInt64 = 0
        var shift: UInt64 = 0
        var index = self.readerIndex
        while shift < 70 {
            guard let byte = self.getInteger(at: index, as: UInt8.self) else { return nil }
            index += 1
            result |= UInt64(byte & 0x7F) << shift
            if byte & 0x80 == 0 {
                self.moveReaderIndex(to: index)
                return Int64(bitPattern: result >> 1) ^ -Int64(bitPattern: result & 1)
            }
            shift += 7
        }
        return nil
    }
}
