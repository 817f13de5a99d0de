/// Writes values and output objects as compact JSON text. A double that JSON cannot carry
/// (infinity, NaN) is written as null rather than as invalid JSON.
struct StreamJSONWriter {
    private(set) var text = ""

    mutating func value(_ value: StreamValue) {
        switch value {
        case .null: text += "null"
        case .bool(let flag): text += flag ? "true" : "false"
        case .int(let number): text += String(number)
        case .double(let number): text += number.isFinite ? Self.format(number) : "null"
        case .string(let string): quoted(string)
        case .json(let json): text += json
        }
    }

    mutating func object(_ fields: [(name: String, value: StreamValue)]) {
        text += "{"
        for (index, field) in fields.enumerated() {
            if index > 0 { text += "," }
            quoted(field.name)
            text += ":"
            value(field.value)
        }
        text += "}"
    }

    /// Shortest text that reads back as the same double; integral values keep a ".0" so a
    /// reader sees a floating-point column.
    static func format(_ number: Double) -> String { number.description }

    mutating func quoted(_ string: String) {
        text += "\""
        for scalar in string.unicodeScalars {
            switch scalar {
            case "\"": text += "\\\""
            case "\\": text += "\\\\"
            case "\n": text += "\\n"
            case "\r": text += "\\r"
            case "\t": text += "\\t"
            case _ where scalar.value < 0x20:
                let hex = String(scalar.value, radix: 16)
                text += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
            default:
                text.unicodeScalars.append(scalar)
            }
        }
        text += "\""
    }
}
