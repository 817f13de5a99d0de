/// Writes values and output objects as compact JSON, into bytes (an output record's value is
/// bytes; building a String first cost a copy and Swift's String appends on every record).
/// A double that JSON cannot carry (infinity, NaN) is written as null rather than as invalid
/// JSON.
struct StreamJSONWriter {
    private(set) var bytes: [UInt8] = []

    init(capacity: Int = 128) { bytes.reserveCapacity(capacity) }

    var text: String { String(decoding: bytes, as: UTF8.self) }

    private mutating func append(_ literal: StaticString) {
        literal.withUTF8Buffer { bytes.append(contentsOf: $0) }
    }

    private mutating func append(_ string: String) {
        var string = string
        string.withUTF8 { bytes.append(contentsOf: $0) }
    }

    mutating func value(_ value: StreamValue) {
        switch value {
        case .null: append("null")
        case .bool(let flag): flag ? append("true") : append("false")
        case .int(let number): append(String(number))
        case .double(let number): number.isFinite ? append(Self.format(number)) : append("null")
        case .string(let string): quoted(string)
        case .json(let json): append(json)
        }
    }

    mutating func object(_ fields: [(name: String, value: StreamValue)]) {
        bytes.append(UInt8(ascii: "{"))
        for (index, field) in fields.enumerated() {
            if index > 0 { bytes.append(UInt8(ascii: ",")) }
            quoted(field.name)
            bytes.append(UInt8(ascii: ":"))
            value(field.value)
        }
        bytes.append(UInt8(ascii: "}"))
    }

    /// Shortest text that reads back as the same double; integral values keep a ".0" so a
    /// reader sees a floating-point column.
    static func format(_ number: Double) -> String { number.description }

    static let hexDigits: [UInt8] = Array("0123456789abcdef".utf8)

    mutating func quoted(_ string: String) {
        bytes.append(UInt8(ascii: "\""))
        var string = string
        string.withUTF8 { utf8 in
            for byte in utf8 {
                switch byte {
                case UInt8(ascii: "\""): append("\\\"")
                case UInt8(ascii: "\\"): append("\\\\")
                case UInt8(ascii: "\n"): append("\\n")
                case UInt8(ascii: "\r"): append("\\r")
                case UInt8(ascii: "\t"): append("\\t")
                case 0..<0x20:
                    append("\\u00")
                    bytes.append(Self.hexDigits[Int(byte >> 4)])
                    bytes.append(Self.hexDigits[Int(byte & 0xF)])
                default:
                    // UTF-8 bytes above 0x7F (multi-byte characters) pass as they are.
                    bytes.append(byte)
                }
            }
        }
        bytes.append(UInt8(ascii: "\""))
    }
}
