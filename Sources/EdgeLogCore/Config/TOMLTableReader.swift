package import EdgeLogTOML
import Foundation

/// Reads one TOML table with types checked, remembering which keys were read so that a key
/// nobody asked for (a typo) is reported with its line instead of silently ignored.
///
/// `coercesStrings` is for configurations that came as JSON through the connector API: Kafka
/// Connect's tools send every value as a string, so "1883" is read as an integer, "true" as a
/// boolean and "a,b" as a list there.
package final class TOMLTableReader {
    package let table: TOMLTable
    let path: String
    let file: String
    let coercesStrings: Bool
    private var used: Set<String> = []

    package init(table: TOMLTable, path: String, file: String, coercesStrings: Bool = false) {
        self.table = table
        self.path = path
        self.file = file
        self.coercesStrings = coercesStrings
    }

    /// Marks `key` as read without reading it (a key another reader handles).
    package func skip(_ key: String) { used.insert(key) }

    package func keyPath(_ key: String) -> String { path.isEmpty ? key : path + "." + key }

    /// An error about `key`, on the line the key is defined, or for a missing key (or `nil`,
    /// the table itself) on the line of the table's header.
    package func error(_ key: String?, _ message: String) -> ConfigError {
        let full = key.map(keyPath) ?? (path.isEmpty ? nil : path)
        // Line 0: a configuration that did not come from a file has no lines to name.
        let raw = key.flatMap { table[$0]?.line } ?? table.line
        let line: Int? = raw > 0 ? raw : nil
        return ConfigError(file: file, line: line, key: full, message: message)
    }

    private func value(_ key: String) -> TOMLValue? {
        used.insert(key)
        return table[key]
    }

    package func string(_ key: String) throws(ConfigError) -> String? {
        guard let value = value(key) else { return nil }
        guard let string = value.string else { throw error(key, "expected a string, found \(describe(value))") }
        return string
    }

    /// A string that may be empty in the file to mean "not set".
    package func optionalString(_ key: String) throws(ConfigError) -> String? {
        guard let string = try string(key), !string.isEmpty else { return nil }
        return string
    }

    package func int(_ key: String, in range: ClosedRange<Int>) throws(ConfigError) -> Int? {
        guard let value = value(key) else { return nil }
        guard let integer = value.integer ?? (coercesStrings ? value.string.flatMap({ Int64($0) }) : nil) else {
            throw error(key, "expected an integer, found \(describe(value))")
        }
        guard let int = Int(exactly: integer), range.contains(int) else {
            throw error(key, "\(integer) is out of range \(range.lowerBound)...\(range.upperBound)")
        }
        return int
    }

    package func strings(_ key: String) throws(ConfigError) -> [String]? {
        guard let value = value(key) else { return nil }
        if coercesStrings, let list = value.string {
            return list.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        }
        guard let array = value.array else { throw error(key, "expected an array of strings, found \(describe(value))") }
        var strings: [String] = []
        for element in array {
            guard let string = element.string else { throw error(key, "expected strings only, found \(describe(element))") }
            strings.append(string)
        }
        return strings
    }

    package func bool(_ key: String) throws(ConfigError) -> Bool? {
        guard let value = value(key) else { return nil }
        guard let bool = value.boolean ?? (coercesStrings ? ["true": true, "false": false][value.string ?? ""] : nil) else {
            throw error(key, "expected true or false, found \(describe(value))")
        }
        return bool
    }

    package func choice<T: RawRepresentable>(_ key: String, _ type: T.Type) throws(ConfigError) -> T? where T.RawValue == String {
        guard let string = try string(key) else { return nil }
        guard let choice = T(rawValue: string) else { throw error(key, "'\(string)' is not one of the allowed values") }
        return choice
    }

    package func table(_ key: String) throws(ConfigError) -> TOMLTableReader? {
        guard let value = value(key) else { return nil }
        guard let table = value.table else { throw error(key, "expected a table, found \(describe(value))") }
        return TOMLTableReader(table: table, path: keyPath(key), file: file, coercesStrings: coercesStrings)
    }

    /// An array of tables (`[[key]]`).
    package func tables(_ key: String) throws(ConfigError) -> [TOMLTableReader] {
        guard let value = value(key) else { return [] }
        guard let array = value.array else { throw error(key, "expected [[\(keyPath(key))]] tables, found \(describe(value))") }
        var readers: [TOMLTableReader] = []
        for (index, element) in array.enumerated() {
            guard let table = element.table else {
                throw error("\(key)[\(index)]", "expected a table, found \(describe(element))")
            }
            readers.append(TOMLTableReader(table: table, path: "\(keyPath(key))[\(index)]", file: file, coercesStrings: coercesStrings))
        }
        return readers
    }

    /// Fails on the first key of the table that no reader asked for.
    package func rejectUnknownKeys() throws(ConfigError) {
        for key in table.keys.sorted() where !used.contains(key) {
            throw error(key, "unknown key (misspelt, or in the wrong table?)")
        }
    }

    private func describe(_ value: TOMLValue) -> String {
        switch value.kind {
        case .string(let string): "the string \"\(string)\""
        case .integer(let integer): "the integer \(integer)"
        default: value.typeDescription
        }
    }
}
