public import NIOCore

/// The binary form of a processor's state, for its snapshots: fixed-width big-endian integers,
/// doubles by their bit patterns (so a restored state is bit for bit the one saved), and
/// length-prefixed text. Every decoder checks what it reads and throws `StateDecodingError`
/// on bytes that do not parse, so a corrupt snapshot is refused rather than half restored.
public struct StateDecodingError: Error, Sendable, CustomStringConvertible {
    public let description: String
    init(_ description: String) { self.description = description }
}

extension ByteBuffer {
    mutating func writeStateInt(_ value: Int64) { writeInteger(value) }

    mutating func readStateInt() throws(StateDecodingError) -> Int64 {
        guard let value = readInteger(as: Int64.self) else { throw StateDecodingError("truncated integer") }
        return value
    }

    mutating func writeStateDouble(_ value: Double) { writeInteger(value.bitPattern) }

    mutating func readStateDouble() throws(StateDecodingError) -> Double {
        guard let bits = readInteger(as: UInt64.self) else { throw StateDecodingError("truncated double") }
        return Double(bitPattern: bits)
    }

    mutating func writeStateByte(_ value: UInt8) { writeInteger(value) }

    mutating func readStateByte() throws(StateDecodingError) -> UInt8 {
        guard let value = readInteger(as: UInt8.self) else { throw StateDecodingError("truncated tag") }
        return value
    }

    mutating func writeStateText(_ text: String) {
        writeInteger(UInt32(text.utf8.count))
        writeString(text)
    }

    mutating func readStateText() throws(StateDecodingError) -> String {
        guard let length = readInteger(as: UInt32.self), let text = readString(length: Int(length)) else {
            throw StateDecodingError("truncated text")
        }
        return text
    }

    mutating func writeStateBytes(_ bytes: [UInt8]?) {
        guard let bytes else {
            writeInteger(Int32(-1))
            return
        }
        writeInteger(Int32(bytes.count))
        writeBytes(bytes)
    }

    mutating func readStateBytes() throws(StateDecodingError) -> [UInt8]? {
        guard let length = readInteger(as: Int32.self) else { throw StateDecodingError("truncated bytes") }
        if length < 0 { return nil }
        guard let bytes = readBytes(length: Int(length)) else { throw StateDecodingError("truncated bytes") }
        return bytes
    }

    mutating func readStateCount(max: Int = 1 << 28) throws(StateDecodingError) -> Int {
        let count = try readStateInt()
        guard count >= 0, count <= max else { throw StateDecodingError("count \(count) out of range") }
        return Int(count)
    }

    mutating func writeStateOptionalInt(_ value: Int64?) {
        writeStateByte(value == nil ? 0 : 1)
        if let value { writeStateInt(value) }
    }

    mutating func readStateOptionalInt() throws(StateDecodingError) -> Int64? {
        try readStateByte() == 0 ? nil : readStateInt()
    }

    mutating func writeStateValue(_ value: StreamValue) {
        switch value {
        case .null: writeStateByte(0)
        case .bool(let flag): writeStateByte(flag ? 2 : 1)
        case .int(let number):
            writeStateByte(3)
            writeStateInt(number)
        case .double(let number):
            writeStateByte(4)
            writeStateDouble(number)
        case .string(let text):
            writeStateByte(5)
            writeStateText(text)
        case .json(let text):
            writeStateByte(6)
            writeStateText(text)
        }
    }

    mutating func readStateValue() throws(StateDecodingError) -> StreamValue {
        switch try readStateByte() {
        case 0: return .null
        case 1: return .bool(false)
        case 2: return .bool(true)
        case 3: return .int(try readStateInt())
        case 4: return .double(try readStateDouble())
        case 5: return .string(try readStateText())
        case 6: return .json(try readStateText())
        case let tag: throw StateDecodingError("unknown value tag \(tag)")
        }
    }
}
