public import EdgeLogTOML
import Foundation
import NIOCore

/// A connector's configuration as it was given: keys and values in order, from a TOML table
/// or a JSON object. Kept to show back (secrets masked), to persist run-time connectors, and
/// to merge a PATCH into; `ConnectorType.parse` turns it into settings.
public struct ConnectorConfig: Sendable, Equatable, Codable {
    public indirect enum Value: Sendable, Equatable, Codable {
        case string(String)
        case integer(Int64)
        case float(Double)
        case boolean(Bool)
        case array([Value])
        case table([Entry])

        public init(from decoder: any Decoder) throws {
            let container = try decoder.singleValueContainer()
            if let value = try? container.decode(Bool.self) {
                self = .boolean(value)
            } else if let value = try? container.decode(Int64.self) {
                self = .integer(value)
            } else if let value = try? container.decode(Double.self) {
                self = .float(value)
            } else if let value = try? container.decode(String.self) {
                self = .string(value)
            } else if let value = try? container.decode([Value].self) {
                self = .array(value)
            } else if let value = try? container.decode([String: Value].self) {
                self = .table(value.sorted { $0.key < $1.key }.map { Entry(key: $0.key, value: $0.value) })
            } else {
                throw DecodingError.dataCorruptedError(in: container, debugDescription: "null is not a configuration value")
            }
        }

        public func encode(to encoder: any Encoder) throws {
            var container = encoder.singleValueContainer()
            switch self {
            case .string(let value): try container.encode(value)
            case .integer(let value): try container.encode(value)
            case .float(let value): try container.encode(value)
            case .boolean(let value): try container.encode(value)
            case .array(let value): try container.encode(value)
            case .table(let entries):
                try container.encode(Dictionary(entries.map { ($0.key, $0.value) }, uniquingKeysWith: { $1 }))
            }
        }

        init(_ toml: TOMLValue) {
            switch toml.kind {
            case .string(let value), .dateTime(let value): self = .string(value)
            case .integer(let value): self = .integer(value)
            case .float(let value): self = .float(value)
            case .boolean(let value): self = .boolean(value)
            case .array(let values): self = .array(values.map(Value.init))
            case .table(let table): self = .table(ConnectorConfig(table).entries)
            }
        }

        func toml(line: Int) -> TOMLValue {
            let kind: TOMLValue.Kind
            switch self {
            case .string(let value): kind = .string(value)
            case .integer(let value): kind = .integer(value)
            case .float(let value): kind = .float(value)
            case .boolean(let value): kind = .boolean(value)
            case .array(let values): kind = .array(values.map { $0.toml(line: line) })
            case .table(let entries): kind = .table(ConnectorConfig(entries: entries).tomlTable(line: line))
            }
            return TOMLValue(kind: kind, line: line, column: 0)
        }

        package func write(_ json: inout JSONWriter, masking secrets: Set<String>) {
            switch self {
            case .string(let value): json.string(value)
            case .integer(let value): json.number(value)
            case .float(let value): json.raw(ByteBuffer(string: value.isFinite ? "\(value)" : "null"))
            case .boolean(let value): json.bool(value)
            case .array(let values):
                json.beginArray()
                for value in values { value.write(&json, masking: secrets) }
                json.endArray()
            case .table(let entries): ConnectorConfig(entries: entries).write(&json, masking: secrets)
            }
        }
    }

    public struct Entry: Sendable, Equatable, Codable {
        public var key: String
        public var value: Value

        public init(key: String, value: Value) {
            self.key = key
            self.value = value
        }
    }

    public var entries: [Entry]

    public init(entries: [Entry] = []) { self.entries = entries }

    /// A JSON object (keys sorted: JSON objects have no order).
    public init(from decoder: any Decoder) throws {
        let object = try decoder.singleValueContainer().decode([String: Value].self)
        entries = object.sorted { $0.key < $1.key }.map { Entry(key: $0.key, value: $0.value) }
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(Dictionary(entries.map { ($0.key, $0.value) }, uniquingKeysWith: { $1 }))
    }

    /// Every key of `table` but those in `skipping` (`name`, `type`: the connector's, not its
    /// configuration's).
    public init(_ table: TOMLTable, skipping: Set<String> = []) {
        entries = table.keys.filter { !skipping.contains($0) }.compactMap { key in
            table[key].map { Entry(key: key, value: Value($0)) }
        }
    }

    public subscript(key: String) -> Value? {
        get { entries.first { $0.key == key }?.value }
        set {
            if let index = entries.firstIndex(where: { $0.key == key }) {
                if let newValue { entries[index].value = newValue } else { entries.remove(at: index) }
            } else if let newValue {
                entries.append(Entry(key: key, value: newValue))
            }
        }
    }

    /// The configuration as a TOML table, every value on `line` (0: not from a file).
    public func tomlTable(line: Int) -> TOMLTable {
        TOMLTable(entries: entries.map { ($0.key, $0.value.toml(line: line)) }, line: line)
    }

    /// Keys whose values are never shown back.
    public static let secretKeys: Set<String> = ["password", "sasl_password", "auth_token"]
    public static let maskedValue = "[hidden]"

    package func write(_ json: inout JSONWriter, masking secrets: Set<String> = ConnectorConfig.secretKeys) {
        json.beginObject()
        for entry in entries {
            json.key(entry.key)
            if secrets.contains(entry.key) {
                json.string(Self.maskedValue)
            } else {
                entry.value.write(&json, masking: secrets)
            }
        }
        json.endObject()
    }
}
