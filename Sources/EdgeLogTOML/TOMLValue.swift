/// A parsed TOML value with the place it was defined, so that a configuration reader can name
/// the line of a wrong type, an unknown key or a bad value.
public struct TOMLValue: Sendable {
    public enum Kind: Sendable {
        case string(String)
        case integer(Int64)
        case float(Double)
        case boolean(Bool)
        /// An offset or local date-time, local date or local time, validated and kept as written.
        case dateTime(String)
        case array([TOMLValue])
        case table(TOMLTable)
    }

    public var kind: Kind
    /// 1-based line and column (in bytes) where the value, or the key that holds it, starts.
    public var line: Int
    public var column: Int

    public init(kind: Kind, line: Int, column: Int) {
        self.kind = kind
        self.line = line
        self.column = column
    }

    public var string: String? { if case .string(let value) = kind { value } else { nil } }
    public var integer: Int64? { if case .integer(let value) = kind { value } else { nil } }
    public var float: Double? { if case .float(let value) = kind { value } else { nil } }
    public var boolean: Bool? { if case .boolean(let value) = kind { value } else { nil } }
    public var array: [TOMLValue]? { if case .array(let value) = kind { value } else { nil } }
    public var table: TOMLTable? { if case .table(let value) = kind { value } else { nil } }

    /// What the value is, for error messages ("expected a string, found an integer").
    public var typeDescription: String {
        switch kind {
        case .string: "a string"
        case .integer: "an integer"
        case .float: "a float"
        case .boolean: "a boolean"
        case .dateTime: "a date-time"
        case .array: "an array"
        case .table: "a table"
        }
    }
}

/// A TOML table: keys in the order they were defined. Immutable once the parser returns it;
/// the parser alone fills it (and records how it was made, which decides whether a later
/// header or dotted key may extend it).
public final class TOMLTable: @unchecked Sendable {
    public private(set) var keys: [String] = []
    private var entries: [String: TOMLValue] = [:]
    /// The line of the header or key that defined the table.
    public internal(set) var line: Int

    /// How a table came to be; TOML allows extending some and not others.
    enum Origin {
        /// `[a.b]` made `a` exist without defining it: a later `[a]` may define it once.
        case implicit
        /// Defined by its own `[header]` or as an element of `[[array]]`.
        case header
        /// Made by a dotted key (`a.b = 1` makes `a`): extended only by more dotted keys and sub-table headers.
        case dotted
        /// `{ ... }`: complete as written.
        case inline
    }

    var origin: Origin

    init(origin: Origin, line: Int) {
        self.origin = origin
        self.line = line
    }

    /// A complete table made from values (a configuration that came as JSON, say), as if
    /// written inline at `line`.
    public convenience init(entries: [(key: String, value: TOMLValue)], line: Int) {
        self.init(origin: .inline, line: line)
        for (key, value) in entries { set(key, value) }
    }

    public subscript(key: String) -> TOMLValue? {
        guard var value = entries[key] else { return nil }
        if let elements = tableArrays[key] { value.kind = .array(elements) }
        return value
    }

    public var count: Int { keys.count }

    /// Arrays made by `[[key]]` headers, kept apart so that appending does not copy them and
    /// so that an array written as a value (which may not be appended to) is told apart.
    private var tableArrays: [String: [TOMLValue]] = [:]

    /// The value at `key` as stored, without assembling an array of tables (for the parser).
    func entry(_ key: String) -> TOMLValue? { entries[key] }

    func set(_ key: String, _ value: TOMLValue) {
        if entries.updateValue(value, forKey: key) == nil { keys.append(key) }
    }

    func isTableArray(_ key: String) -> Bool { tableArrays[key] != nil }

    /// The last table of the array of tables at `key`.
    func lastOfTableArray(_ key: String) -> TOMLTable? { tableArrays[key]?.last?.table }

    /// Appends to the array of tables at `key`, making it if `key` is not defined yet.
    func appendToTableArray(_ key: String, _ element: TOMLTable, line: Int, column: Int) {
        let value = TOMLValue(kind: .table(element), line: line, column: column)
        if tableArrays[key] == nil { set(key, TOMLValue(kind: .array([]), line: line, column: column)) }
        tableArrays[key, default: []].append(value)
    }
}

/// A syntax or structure error, with where it was found.
public struct TOMLParseError: Error, Sendable, Equatable, CustomStringConvertible {
    public var line: Int
    public var column: Int
    public var message: String

    public init(line: Int, column: Int, message: String) {
        self.line = line
        self.column = column
        self.message = message
    }

    public var description: String { "line \(line), column \(column): \(message)" }
}
