/// A token of the processor language, with where it starts (1-based line and column) so that
/// every syntax error can point at it.
struct SQLToken: Equatable, Sendable {
    enum Kind: Equatable, Sendable {
        /// A bare word: a keyword or a name, compared case-insensitively as keywords.
        case word(String)
        /// A name in backticks or double quotes: never a keyword, case kept.
        case quotedName(String)
        case string(String)
        case integer(Int64)
        case decimal(Double)
        /// Operators and punctuation: ( ) , . ; * + - / % = != <> < <= > >= || -> $ [ ]
        case symbol(String)
        case end
    }

    var kind: Kind
    var line: Int
    var column: Int

    /// The keyword this token is, upper-cased; nil for anything but a bare word.
    var keyword: String? {
        if case .word(let word) = kind { word.uppercased() } else { nil }
    }

    var describe: String {
        switch kind {
        case .word(let word): "'\(word)'"
        case .quotedName(let name): "the name `\(name)`"
        case .string(let text): "the string '\(text)'"
        case .integer(let value): "\(value)"
        case .decimal(let value): "\(value)"
        case .symbol(let symbol): "'\(symbol)'"
        case .end: "the end of the query"
        }
    }
}

/// A query that does not parse: what was expected, what was found, and where.
public struct SQLSyntaxError: Error, Sendable, Equatable, CustomStringConvertible {
    public var line: Int
    public var column: Int
    public var message: String

    public var description: String { "line \(line), column \(column): \(message)" }
}
