/// The functions a query may call on values (aggregates are `AggregateKind`). Names follow
/// ksqlDB and eKuiper where they have one, with their common aliases. Every function is pure:
/// the same arguments give the same result, so a processor's output depends only on its input
/// (there is no NOW()).
enum ScalarFunction: String, Sendable, CaseIterable {
    // Null handling
    case coalesce, ifnull, nullif
    // Numbers
    case abs, round, floor, ceil, sqrt, power, ln, log10, exp, sign, greatest, least
    // Strings
    case lower, upper, length, trim, ltrim, rtrim, substring, concat, replace, instr, lpad, rpad
    case startsWith = "starts_with", endsWith = "ends_with"
    // Time (milliseconds since the epoch, UTC)
    case timestampToString = "timestamptostring", stringToTimestamp = "stringtotimestamp"
    case year, month, day, hour, minute, second
    case timeBucket = "time_bucket"
    // JSON
    case arrayLength = "array_length"

    /// Names that mean the same function.
    static let aliases: [String: ScalarFunction] = [
        "LCASE": .lower, "UCASE": .upper, "LEN": .length, "CHAR_LENGTH": .length, "SUBSTR": .substring, "POW": .power,
        "CEILING": .ceil, "FORMAT_TIMESTAMP": .timestampToString, "PARSE_TIMESTAMP": .stringToTimestamp,
        "DAYOFMONTH": .day,
    ]

    init?(sqlName: String) {
        if let alias = Self.aliases[sqlName] {
            self = alias
        } else if let function = ScalarFunction(rawValue: sqlName.lowercased()) {
            self = function
        } else {
            return nil
        }
    }

    /// How many arguments it takes.
    var arity: ClosedRange<Int> {
        switch self {
        case .coalesce, .concat, .greatest, .least: 1...64
        case .ifnull, .nullif, .power, .instr, .startsWith, .endsWith, .timeBucket: 2...2
        case .round: 1...2
        case .substring: 2...3
        case .replace, .lpad, .rpad: 3...3
        case .timestampToString, .stringToTimestamp: 1...2
        default: 1...1
        }
    }
}
