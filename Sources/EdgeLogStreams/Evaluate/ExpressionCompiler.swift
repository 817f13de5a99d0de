/// A query that parses but cannot run: an unknown function, an aggregate where none may be, a
/// column that is neither grouped nor aggregated, a property with a wrong value.
public struct StreamPlanError: Error, Sendable, Equatable, CustomStringConvertible {
    public var message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

/// Resolves names and checks a query's expressions once, when the processor is created.
///
/// Bare names are record parts (`key`, `value`, `timestamp`/`rowtime`, `partition`, `offset`,
/// `topic`, `headers`) or else fields of the JSON value, as in eKuiper and ksqlDB
/// (`temperature` is `value->'temperature'`); `headers->'name'` is one header.
struct ExpressionCompiler {
    enum Scope {
        /// One record in hand: WHERE, TIMESTAMP BY, GROUP BY, PARTITION BY, a stateless
        /// SELECT, an aggregate's arguments.
        case record
        /// A group's result: a grouped query's SELECT and HAVING.
        case grouped
    }

    /// The grouped query's GROUP BY expressions, compiled in record scope (so `t`, `$.t` and
    /// `value->'t'` are recognised as the same).
    var groupBy: [CompiledExpression] = []
    var windowed = false
    /// Aggregates found so far; equal ones share a slot.
    private(set) var aggregates: [AggregateSpec] = []
    /// Names given with AS in SELECT, usable in HAVING.
    var aliases: [String: CompiledExpression] = [:]

    static let recordParts: [String: CompiledExpression] = [
        "key": .recordKey, "rowkey": .recordKey, "value": .recordValue, "timestamp": .recordTimestamp,
        "rowtime": .recordTimestamp, "partition": .recordPartition, "rowpartition": .recordPartition,
        "offset": .recordOffset, "rowoffset": .recordOffset, "topic": .recordTopic, "headers": .recordHeaders,
    ]

    mutating func compile(_ expression: SQLExpression, _ scope: Scope) throws(StreamPlanError) -> CompiledExpression {
        if case .grouped = scope {
            if let recordForm = try? compile(expression, .record), let index = groupBy.firstIndex(of: recordForm),
                !recordForm.isConstant
            {
                return .group(index)
            }
            if case .call(let name, let arguments) = expression, let kind = AggregateKind(sqlName: name, arguments: arguments) {
                return .aggregate(try aggregate(kind, arguments))
            }
        } else if case .call(let name, let arguments) = expression, AggregateKind(sqlName: name, arguments: arguments) != nil {
            throw StreamPlanError("the aggregate \(name.lowercased())() can only be used in the SELECT or HAVING of a query with GROUP BY or WINDOW")
        }
        switch expression {
        case .literal(let literal): return .constant(Self.value(literal))
        case .star: throw StreamPlanError("'*' can only stand alone in SELECT or inside count(*)")
        case .column(let name): return try column(name, scope)
        case .path(let base, let steps):
            if case .record = scope, case .column(let name) = base {
                switch name.lowercased() {
                case "value": return .valuePath(steps)
                case "key", "rowkey": return .keyPath(steps)
                case "headers":
                    if steps.count == 1, case .field(let header) = steps[0] { return .header(header) }
                default:
                    if Self.recordParts[name.lowercased()] == nil && aliases[name] == nil {
                        return .valuePath([.field(name)] + steps)
                    }
                }
            }
            return .pathOn(try compile(base, scope), steps)
        case .call(let name, let arguments):
            guard let function = ScalarFunction(sqlName: name) else {
                throw StreamPlanError("unknown function \(name.lowercased())()")
            }
            guard function.arity.contains(arguments.count) else {
                let arity = function.arity
                let expected = arity.lowerBound == arity.upperBound ? "\(arity.lowerBound)" : "\(arity.lowerBound) to \(arity.upperBound)"
                throw StreamPlanError("\(name.lowercased())() takes \(expected) argument\(arity.upperBound == 1 ? "" : "s"), not \(arguments.count)")
            }
            var compiled: [CompiledExpression] = []
            for argument in arguments { compiled.append(try compile(argument, scope)) }
            return .function(function, compiled)
        case .unary(let op, let operand): return .unary(op, try compile(operand, scope))
        case .binary(let op, let left, let right): return .binary(op, try compile(left, scope), try compile(right, scope))
        case .isNull(let operand, let negated): return .isNull(try compile(operand, scope), negated: negated)
        case .inList(let operand, let list, let negated):
            var items: [CompiledExpression] = []
            for item in list { items.append(try compile(item, scope)) }
            return .inList(try compile(operand, scope), items, negated: negated)
        case .between(let operand, let low, let high, let negated):
            return .between(try compile(operand, scope), try compile(low, scope), try compile(high, scope), negated: negated)
        case .like(let operand, let pattern, let negated):
            return .like(try compile(operand, scope), try compile(pattern, scope), negated: negated)
        case .caseWhen(let operand, let branches, let otherwise):
            var compiled: [CompiledWhen] = []
            for branch in branches {
                compiled.append(CompiledWhen(when: try compile(branch.when, scope), then: try compile(branch.then, scope)))
            }
            return .caseWhen(
                operand: try operand.map { (operand) throws(StreamPlanError) in try compile(operand, scope) }, branches: compiled,
                otherwise: try otherwise.map { (otherwise) throws(StreamPlanError) in try compile(otherwise, scope) })
        case .cast(let operand, let typeName):
            guard let type = CastType(sqlName: typeName) else {
                throw StreamPlanError("unknown type \(typeName) in CAST (BIGINT, DOUBLE, STRING, BOOLEAN, TIMESTAMP)")
            }
            return .cast(try compile(operand, scope), type)
        }
    }

    private func column(_ name: String, _ scope: Scope) throws(StreamPlanError) -> CompiledExpression {
        let lower = name.lowercased()
        switch scope {
        case .record:
            if let part = Self.recordParts[lower] { return part }
            if lower == "window_start" || lower == "window_end" || lower == "windowstart" || lower == "windowend" {
                throw StreamPlanError("\(name) exists only in the SELECT or HAVING of a windowed query")
            }
            return .valuePath([.field(name)])
        case .grouped:
            if let alias = aliases[name] { return alias }
            if windowed && (lower == "window_start" || lower == "windowstart") { return .windowStart }
            if windowed && (lower == "window_end" || lower == "windowend") { return .windowEnd }
            throw StreamPlanError("'\(name)' must be in GROUP BY or inside an aggregate such as last(\(name))")
        }
    }

    private mutating func aggregate(_ kind: AggregateKind, _ arguments: [SQLExpression]) throws(StreamPlanError) -> Int {
        var compiled: [CompiledExpression] = []
        for argument in arguments where argument != .star {
            if case .call(let inner, let innerArguments) = argument, AggregateKind(sqlName: inner, arguments: innerArguments) != nil {
                throw StreamPlanError("aggregates cannot be nested: \(inner.lowercased())() inside \(kind.name)()")
            }
            compiled.append(try compile(argument, .record))
        }
        let spec = try AggregateSpec(kind: kind, arguments: compiled)
        if let existing = aggregates.firstIndex(of: spec) { return existing }
        aggregates.append(spec)
        return aggregates.count - 1
    }

    static func value(_ literal: SQLExpression.Literal) -> StreamValue {
        switch literal {
        case .integer(let value): .int(value)
        case .decimal(let value): .double(value)
        case .string(let value): .string(value)
        case .boolean(let value): .bool(value)
        case .null: .null
        }
    }
}
