/// An expression with every name resolved: record parts, paths into the value, group-by
/// values and aggregate results of a grouped query. Built once by `ExpressionCompiler`,
/// evaluated for every record (or every window result) without looking anything up by name.
indirect enum CompiledExpression: Sendable, Equatable {
    case constant(StreamValue)
    case recordKey
    case recordValue
    case recordTimestamp
    case recordPartition
    case recordOffset
    case recordTopic
    case recordHeaders
    /// A path into the record's value bytes (read without parsing the rest of the document).
    case valuePath([SQLExpression.PathStep])
    case keyPath([SQLExpression.PathStep])
    case header(String)
    /// A path into a computed JSON value.
    case pathOn(CompiledExpression, [SQLExpression.PathStep])
    /// The event time of the record (TIMESTAMP BY, else its timestamp).
    case eventTime
    /// A grouped query's GROUP BY value number `n`.
    case group(Int)
    /// A grouped query's aggregate result number `n`.
    case aggregate(Int)
    case windowStart
    case windowEnd
    case unary(SQLExpression.UnaryOperator, CompiledExpression)
    case binary(SQLExpression.BinaryOperator, CompiledExpression, CompiledExpression)
    case isNull(CompiledExpression, negated: Bool)
    case inList(CompiledExpression, [CompiledExpression], negated: Bool)
    case between(CompiledExpression, CompiledExpression, CompiledExpression, negated: Bool)
    case like(CompiledExpression, CompiledExpression, negated: Bool)
    case caseWhen(operand: CompiledExpression?, branches: [CompiledWhen], otherwise: CompiledExpression?)
    case cast(CompiledExpression, CastType)
    case function(ScalarFunction, [CompiledExpression])

    /// Whether the expression reads the record at all (an aggregate's argument that does not,
    /// such as `count(*)`, needs no record in scope).
    var isConstant: Bool {
        if case .constant = self { true } else { false }
    }
}

struct CompiledWhen: Sendable, Equatable {
    var when: CompiledExpression
    var then: CompiledExpression
}

/// The types of CAST.
enum CastType: String, Sendable {
    case bigint, double, string, boolean, timestamp

    init?(sqlName: String) {
        switch sqlName {
        case "BIGINT", "INT", "INTEGER", "LONG", "SMALLINT", "TINYINT": self = .bigint
        case "DOUBLE", "FLOAT", "REAL", "DECIMAL", "NUMERIC": self = .double
        case "STRING", "VARCHAR", "TEXT", "CHAR": self = .string
        case "BOOLEAN", "BOOL": self = .boolean
        case "TIMESTAMP": self = .timestamp
        default: return nil
        }
    }
}

/// What an expression is evaluated against: the record in hand (for WHERE, projections and
/// aggregate arguments) or a window's result (for a grouped query's SELECT and HAVING).
final class EvaluationContext {
    var record: StreamRecord?
    var eventTimeMs: Int64 = 0
    var groups: [StreamValue] = []
    var aggregates: [StreamValue] = []
    var windowStartMs: Int64?
    var windowEndMs: Int64?

    init() {}
}
