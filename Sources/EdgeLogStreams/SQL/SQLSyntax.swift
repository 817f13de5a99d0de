/// The processor language's syntax tree: `CREATE STREAM name AS SELECT ...`, close to ksqlDB
/// and eKuiper so that queries carry over.
public indirect enum SQLExpression: Equatable, Sendable {
    public enum Literal: Equatable, Sendable {
        case integer(Int64)
        case decimal(Double)
        case string(String)
        case boolean(Bool)
        case null
    }

    /// One step into a JSON value: `->'name'` / `.name`, or `->0` / `[0]`.
    public enum PathStep: Equatable, Sendable {
        case field(String)
        case index(Int)
    }

    public enum UnaryOperator: String, Sendable { case negate = "-", not = "NOT" }

    public enum BinaryOperator: String, Sendable {
        case add = "+", subtract = "-", multiply = "*", divide = "/", remainder = "%", concatenate = "||"
        case equal = "=", notEqual = "!=", less = "<", lessOrEqual = "<=", greater = ">", greaterOrEqual = ">="
        case and = "AND", or = "OR"
    }

    case literal(Literal)
    /// A record's part (`key`, `value`, `timestamp`, `partition`, `offset`, `headers`), or a
    /// name given with AS.
    case column(String)
    /// A path into a JSON value: `value->'a'->'b'`, `$.a.b` (on the value).
    case path(SQLExpression, [PathStep])
    /// A function (names upper-cased); `count(*)` has the argument `.star`.
    case call(String, [SQLExpression])
    case star
    case unary(UnaryOperator, SQLExpression)
    case binary(BinaryOperator, SQLExpression, SQLExpression)
    case isNull(SQLExpression, negated: Bool)
    case inList(SQLExpression, [SQLExpression], negated: Bool)
    case between(SQLExpression, SQLExpression, SQLExpression, negated: Bool)
    case like(SQLExpression, SQLExpression, negated: Bool)
    /// `CASE [operand] WHEN .. THEN .. [ELSE ..] END`.
    case caseWhen(operand: SQLExpression?, branches: [WhenThen], otherwise: SQLExpression?)
    /// `CAST(expr AS type)`, the type upper-cased (BIGINT, DOUBLE, STRING, BOOLEAN, ...).
    case cast(SQLExpression, String)

    public struct WhenThen: Equatable, Sendable {
        public var when: SQLExpression
        public var then: SQLExpression
    }
}

/// A time span in a query: `10 SECONDS`, `1 MINUTE`.
public struct SQLDuration: Equatable, Sendable {
    public var milliseconds: Int64
}

public enum SQLWindow: Equatable, Sendable {
    case tumbling(size: SQLDuration, grace: SQLDuration?)
    case hopping(size: SQLDuration, advance: SQLDuration, grace: SQLDuration?)
    case session(gap: SQLDuration, grace: SQLDuration?)
    /// Every `n` records per key.
    case count(Int64)
}

public struct SQLSelectItem: Equatable, Sendable {
    public var expression: SQLExpression
    public var alias: String?
}

/// `DEDUPE BY id WITHIN 10 MINUTES`: per key, a record whose id was seen within the time
/// (by event time) is dropped.
public struct SQLDedupe: Equatable, Sendable {
    public var id: SQLExpression
    public var within: SQLDuration
}

/// `THROTTLE 10 PER 1 MINUTE`: per key, at most that many records per window of event time.
public struct SQLThrottle: Equatable, Sendable {
    public var count: Int64
    public var per: SQLDuration
}

/// `DEADBAND $.t BY 0.5 [EVERY 5 MINUTES]`: per key, a record passes when its value moved
/// more than the threshold from the last one that passed, or (with EVERY) when that one is
/// at least the time older.
public struct SQLDeadband: Equatable, Sendable {
    public var value: SQLExpression
    public var threshold: Double
    public var every: SQLDuration?
}

public struct SQLSelect: Equatable, Sendable {
    public var items: [SQLSelectItem]
    public var sources: [String]
    /// Event time: `TIMESTAMP BY expr`; nil: the record's timestamp.
    public var timestampBy: SQLExpression?
    public var window: SQLWindow?
    public var filter: SQLExpression?
    public var groupBy: [SQLExpression]
    public var having: SQLExpression?
    public var partitionBy: SQLExpression?
    public var dedupe: SQLDedupe? = nil
    public var throttle: SQLThrottle? = nil
    public var deadband: SQLDeadband? = nil
}

public struct SQLCreateStream: Equatable, Sendable {
    public enum Emit: String, Sendable {
        /// Every change of a window's result as it happens.
        case changes = "CHANGES"
        /// A window's result once, when the window closes.
        case final = "FINAL"
    }

    public var name: String
    /// `WITH (KAFKA_TOPIC = 'out', ...)`: properties, names upper-cased.
    public var properties: [String: SQLExpression.Literal]
    public var select: SQLSelect
    public var emit: Emit?
}
