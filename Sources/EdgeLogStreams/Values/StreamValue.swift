/// A value inside a processor: what a JSON path yields, what an expression computes, what an
/// aggregate holds. JSON objects and arrays are kept as their JSON text (`json`), because a
/// query mostly passes them through or reaches into them with a path.
public enum StreamValue: Sendable, Hashable {
    case null
    case bool(Bool)
    case int(Int64)
    case double(Double)
    case string(String)
    /// An object or array, as compact JSON text.
    case json(String)

    public var isNull: Bool { if case .null = self { true } else { false } }

    /// The number this value is, as a Double: integers, doubles and numeric strings; nil for
    /// anything else (a reading sent as "21.5" still averages).
    public var double: Double? {
        switch self {
        case .int(let value): Double(value)
        case .double(let value): value
        case .string(let text): Double(text.trimmedOfSpaces)
        case .bool, .null, .json: nil
        }
    }

    /// The integer this value is: integers, integral doubles in range and integer strings.
    public var int: Int64? {
        switch self {
        case .int(let value): value
        case .double(let value): value.rounded(.towardZero) == value && abs(value) < 9.2e18 ? Int64(value) : nil
        case .string(let text): Int64(text.trimmedOfSpaces) ?? Double(text).flatMap { StreamValue.double($0).int }
        case .bool, .null, .json: nil
        }
    }

    /// SQL truth: only `true` passes a WHERE; null and anything else do not.
    public var isTrue: Bool { if case .bool(true) = self { true } else { false } }

    /// The value as text: strings as they are, everything else as its JSON.
    public var text: String {
        switch self {
        case .string(let text): text
        case .null: "null"
        default: jsonText
        }
    }

    public var jsonText: String {
        var writer = StreamJSONWriter()
        writer.value(self)
        return writer.text
    }

    var typeName: String {
        switch self {
        case .null: "null"
        case .bool: "boolean"
        case .int: "integer"
        case .double: "double"
        case .string: "string"
        case .json(let text): text.hasPrefix("[") ? "array" : "object"
        }
    }
}

extension String {
    /// Without the spaces around it.
    var trimmedOfSpaces: Substring {
        var slice = Substring(self)
        while slice.first == " " { slice.removeFirst() }
        while slice.last == " " { slice.removeLast() }
        return slice
    }
}

/// Orders and compares values the way SQL does: numbers with numbers (an integer equals the
/// same double), strings with strings, booleans with booleans; any comparison with null, or
/// between kinds that do not compare, is unknown (nil).
extension StreamValue {
    public static func compare(_ left: StreamValue, _ right: StreamValue) -> Int? {
        switch (left, right) {
        case (.null, _), (_, .null): return nil
        case (.int(let a), .int(let b)): return a < b ? -1 : (a == b ? 0 : 1)
        case (.string(let a), .string(let b)): return a < b ? -1 : (a == b ? 0 : 1)
        case (.bool(let a), .bool(let b)): return a == b ? 0 : (!a ? -1 : 1)
        case (.json(let a), .json(let b)): return a == b ? 0 : nil
        default:
            guard let a = left.numericOnly, let b = right.numericOnly else { return nil }
            return a < b ? -1 : (a == b ? 0 : 1)
        }
    }

    /// A number for comparison: ints and doubles, but a string is not silently a number here.
    private var numericOnly: Double? {
        switch self {
        case .int(let value): Double(value)
        case .double(let value): value
        default: nil
        }
    }

    /// A total order for keys and sorting (null first, then booleans, numbers, strings, JSON),
    /// so that output is deterministic whatever the mix of kinds.
    static func totalOrder(_ left: StreamValue, _ right: StreamValue) -> Bool {
        func rank(_ value: StreamValue) -> Int {
            switch value {
            case .null: 0
            case .bool: 1
            case .int, .double: 2
            case .string: 3
            case .json: 4
            }
        }
        if rank(left) != rank(right) { return rank(left) < rank(right) }
        if let order = compare(left, right) { return order < 0 }
        return left.jsonText < right.jsonText
    }
}
