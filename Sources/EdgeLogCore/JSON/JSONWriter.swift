public import NIOCore

/// Writes JSON straight into a ByteBuffer: responses that list thousands of offsets or records
/// are built without an intermediate object graph.
package struct JSONWriter {
    package var buffer: ByteBuffer
    private var needsComma: [Bool] = [false]

    package init(capacity: Int = 256) {
        buffer = ByteBuffer()
        buffer.reserveCapacity(capacity)
    }

    private mutating func separate() {
        if needsComma[needsComma.count - 1] { buffer.writeStaticString(",") }
        needsComma[needsComma.count - 1] = true
    }

    package mutating func beginObject() {
        separate()
        buffer.writeStaticString("{")
        needsComma.append(false)
    }

    package mutating func endObject() {
        needsComma.removeLast()
        buffer.writeStaticString("}")
    }

    package mutating func beginArray() {
        separate()
        buffer.writeStaticString("[")
        needsComma.append(false)
    }

    package mutating func endArray() {
        needsComma.removeLast()
        buffer.writeStaticString("]")
    }

    /// A member name; the value written next belongs to it.
    package mutating func key(_ name: String) {
        separate()
        writeEscaped(name)
        buffer.writeStaticString(":")
        needsComma[needsComma.count - 1] = false
    }

    package mutating func string(_ value: String) {
        separate()
        writeEscaped(value)
    }

    package mutating func number<T: BinaryInteger>(_ value: T) {
        separate()
        buffer.writeString(String(value))
    }

    package mutating func bool(_ value: Bool) {
        separate()
        buffer.writeStaticString(value ? "true" : "false")
    }

    package mutating func null() {
        separate()
        buffer.writeStaticString("null")
    }

    /// Bytes that are already valid JSON.
    package mutating func raw(_ json: ByteBuffer) {
        separate()
        buffer.writeImmutableBuffer(json)
    }

    package mutating func field(_ name: String, _ value: String) {
        key(name)
        string(value)
    }

    package mutating func field<T: BinaryInteger>(_ name: String, _ value: T) {
        key(name)
        number(value)
    }

    private mutating func writeEscaped(_ text: String) {
        buffer.writeStaticString("\"")
        if !text.utf8.contains(where: { $0 < 0x20 || $0 == UInt8(ascii: "\"") || $0 == UInt8(ascii: "\\") }) {
            buffer.writeString(text)
            buffer.writeStaticString("\"")
            return
        }
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": buffer.writeStaticString("\\\"")
            case "\\": buffer.writeStaticString("\\\\")
            case "\n": buffer.writeStaticString("\\n")
            case "\r": buffer.writeStaticString("\\r")
            case "\t": buffer.writeStaticString("\\t")
            case _ where scalar.value < 0x20:
                let hex = String(scalar.value, radix: 16)
                buffer.writeString("\\u" + String(repeating: "0", count: 4 - hex.count) + hex)
            default:
                buffer.writeString(String(scalar))
            }
        }
        buffer.writeStaticString("\"")
    }
}
