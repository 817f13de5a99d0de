public import NIOCore

// The primitive encodings of the Kafka protocol, shared by every generated message:
// fixed-width big-endian integers, classic (int16/int32-length) and compact (KIP-482
// unsigned-varint-length) strings, bytes and arrays, and tagged-field sections.
// Readers throw on short or impossible input instead of trapping, because the bytes come
// from the network.

extension ByteBuffer {
    // MARK: Integers and varints

    @inlinable
    public mutating func readKafkaInteger<T: FixedWidthInteger>(_: T.Type, field: String) throws(KafkaCodecError) -> T {
        guard let value = readInteger(as: T.self) else { throw .truncated(field: field) }
        return value
    }

    @inlinable
    public mutating func writeKafkaUnsignedVarint(_ value: UInt32) {
        var remaining = value
        while remaining >= 0x80 {
            writeInteger(UInt8(truncatingIfNeeded: remaining) | 0x80)
            remaining >>= 7
        }
        writeInteger(UInt8(remaining))
    }

    @inlinable
    public mutating func readKafkaUnsignedVarint() throws(KafkaCodecError) -> UInt32 {
        var result: UInt32 = 0
        var shift: UInt32 = 0
        while true {
            guard let byte = readInteger(as: UInt8.self) else { throw .truncated(field: "varint") }
            if shift == 28 && byte > 0x0F { throw .malformedVarint }
            result |= UInt32(byte & 0x7F) << shift
            if byte & 0x80 == 0 { return result }
            shift += 7
        }
    }

    public mutating func writeKafkaUUID(_ uuid: KafkaUUID) {
        writeInteger(uuid.high)
        writeInteger(uuid.low)
    }

    public mutating func readKafkaUUID(field: String) throws(KafkaCodecError) -> KafkaUUID {
        let high = try readKafkaInteger(UInt64.self, field: field)
        let low = try readKafkaInteger(UInt64.self, field: field)
        return KafkaUUID(high: high, low: low)
    }

    // MARK: Lengths

    /// Reads a length prefix: int16 or int32 (`-1` = null) classically, varint `n + 1`
    /// (`0` = null) when compact. Returns nil for null.
    @usableFromInline
    mutating func readKafkaLength(compact: Bool, wide: Bool, field: String) throws(KafkaCodecError) -> Int? {
        let length: Int
        if compact {
            length = Int(try readKafkaUnsignedVarint()) - 1
        } else if wide {
            length = Int(try readKafkaInteger(Int32.self, field: field))
        } else {
            length = Int(try readKafkaInteger(Int16.self, field: field))
        }
        if length == -1 { return nil }
        guard length >= 0 else { throw .invalidLength(field: field, length: length) }
        return length
    }

    @usableFromInline
    mutating func writeKafkaLength(_ length: Int?, compact: Bool, wide: Bool) {
        if compact {
            writeKafkaUnsignedVarint(UInt32(truncatingIfNeeded: (length ?? -1) + 1))
        } else if wide {
            writeInteger(Int32(truncatingIfNeeded: length ?? -1))
        } else {
            writeInteger(Int16(truncatingIfNeeded: length ?? -1))
        }
    }

    // MARK: Strings

    public mutating func writeKafkaString(
        _ value: String?, flexible: Bool, nullable: Bool, field: String
    ) throws(KafkaCodecError) {
        guard let value else {
            guard nullable else { throw .unexpectedNull(field: field) }
            writeKafkaLength(nil, compact: flexible, wide: false)
            return
        }
        let length = value.utf8.count
        if !flexible && length > Int(Int16.max) { throw .invalidLength(field: field, length: length) }
        writeKafkaLength(length, compact: flexible, wide: false)
        writeString(value)
    }

    public mutating func readKafkaString(flexible: Bool, nullable: Bool, field: String) throws(KafkaCodecError) -> String? {
        guard let length = try readKafkaLength(compact: flexible, wide: false, field: field) else {
            guard nullable else { throw .unexpectedNull(field: field) }
            return nil
        }
        guard length <= readableBytes else { throw .truncated(field: field) }
        do {
            guard let string = try readUTF8ValidatedString(length: length) else { throw KafkaCodecError.truncated(field: field) }
            return string
        } catch {
            throw .invalidUTF8(field: field)
        }
    }

    // MARK: Bytes (and record sets, which are bytes on the wire)

    public mutating func writeKafkaBytes(
        _ value: ByteBuffer?, flexible: Bool, nullable: Bool, field: String
    ) throws(KafkaCodecError) {
        guard let value else {
            guard nullable else { throw .unexpectedNull(field: field) }
            writeKafkaLength(nil, compact: flexible, wide: true)
            return
        }
        writeKafkaLength(value.readableBytes, compact: flexible, wide: true)
        writeImmutableBuffer(value)
    }

    /// The length prefix of a bytes field whose content is written elsewhere (a record set
    /// that a connection sends from a file).
    public mutating func writeKafkaBytesLength(_ length: Int, flexible: Bool) {
        writeKafkaLength(length, compact: flexible, wide: true)
    }

    /// Returns a slice of this buffer: record sets are not copied.
    public mutating func readKafkaBytes(flexible: Bool, nullable: Bool, field: String) throws(KafkaCodecError) -> ByteBuffer? {
        guard let length = try readKafkaLength(compact: flexible, wide: true, field: field) else {
            guard nullable else { throw .unexpectedNull(field: field) }
            return nil
        }
        guard let slice = readSlice(length: length) else { throw .truncated(field: field) }
        return slice
    }

    // MARK: Arrays

    public mutating func writeKafkaArrayLength(
        _ count: Int?, flexible: Bool, nullable: Bool, field: String
    ) throws(KafkaCodecError) {
        if count == nil && !nullable { throw .unexpectedNull(field: field) }
        writeKafkaLength(count, compact: flexible, wide: true)
    }

    public mutating func readKafkaArrayLength(flexible: Bool, field: String) throws(KafkaCodecError) -> Int {
        guard let count = try readKafkaNullableArrayLength(flexible: flexible, nullable: false, field: field) else {
            throw .unexpectedNull(field: field)
        }
        return count
    }

    public mutating func readKafkaNullableArrayLength(
        flexible: Bool, nullable: Bool, field: String
    ) throws(KafkaCodecError) -> Int? {
        guard let count = try readKafkaLength(compact: flexible, wide: true, field: field) else {
            guard nullable else { throw .unexpectedNull(field: field) }
            return nil
        }
        // Every element takes at least one byte, so a count beyond the frame is a lie; refusing
        // it here keeps a hostile count from driving a long loop.
        guard count <= readableBytes else { throw .invalidLength(field: field, length: count) }
        return count
    }

    // MARK: Nullable structs and tagged fields

    /// Nullable struct fields carry an int8 marker: -1 for null, 1 for present.
    public mutating func writeKafkaNullMarker(_ isNull: Bool, flexible: Bool, nullable: Bool, field: String) throws(KafkaCodecError) {
        if isNull && !nullable { throw .unexpectedNull(field: field) }
        writeInteger(Int8(isNull ? -1 : 1))
    }

    public mutating func readKafkaNullMarker(flexible: Bool, nullable: Bool, field: String) throws(KafkaCodecError) -> Bool {
        let marker = try readKafkaInteger(Int8.self, field: field)
        if marker < 0 && !nullable { throw .unexpectedNull(field: field) }
        return marker < 0
    }

    /// Reads a tagged field's size and returns its bytes as a slice; the caller decodes the
    /// tags it knows and drops the others.
    public mutating func readKafkaTaggedField() throws(KafkaCodecError) -> ByteBuffer {
        let size = Int(try readKafkaUnsignedVarint())
        guard let slice = readSlice(length: size) else { throw .truncated(field: "tagged field") }
        return slice
    }
}

// MARK: Whole arrays and tagged fields, so generated code stays one call per field.

extension ByteBuffer {
    public mutating func writeKafkaArray<Element>(
        _ array: [Element]?, flexible: Bool, nullable: Bool, field: String,
        _ writeElement: (Element, inout ByteBuffer) throws(KafkaCodecError) -> Void
    ) throws(KafkaCodecError) {
        try writeKafkaArrayLength(array?.count, flexible: flexible, nullable: nullable, field: field)
        for element in array ?? [] {
            try writeElement(element, &self)
        }
    }

    public mutating func readKafkaArray<Element>(
        flexible: Bool, field: String,
        _ readElement: (inout ByteBuffer) throws(KafkaCodecError) -> Element
    ) throws(KafkaCodecError) -> [Element] {
        let count = try readKafkaArrayLength(flexible: flexible, field: field)
        return try readKafkaElements(count: count, readElement)
    }

    public mutating func readKafkaNullableArray<Element>(
        flexible: Bool, nullable: Bool, field: String,
        _ readElement: (inout ByteBuffer) throws(KafkaCodecError) -> Element
    ) throws(KafkaCodecError) -> [Element]? {
        guard let count = try readKafkaNullableArrayLength(flexible: flexible, nullable: nullable, field: field) else {
            return nil
        }
        return try readKafkaElements(count: count, readElement)
    }

    private mutating func readKafkaElements<Element>(
        count: Int, _ readElement: (inout ByteBuffer) throws(KafkaCodecError) -> Element
    ) throws(KafkaCodecError) -> [Element] {
        var elements: [Element] = []
        elements.reserveCapacity(count)
        for _ in 0..<count {
            elements.append(try readElement(&self))
        }
        return elements
    }

    /// Writes one tagged field: its tag, its size, then what `writeValue` encodes.
    public mutating func writeKafkaTaggedField(
        tag: UInt32, _ writeValue: (inout ByteBuffer) throws(KafkaCodecError) -> Void
    ) throws(KafkaCodecError) {
        var value = ByteBuffer()
        try writeValue(&value)
        writeKafkaUnsignedVarint(tag)
        writeKafkaUnsignedVarint(UInt32(value.readableBytes))
        writeImmutableBuffer(value)
    }
}
