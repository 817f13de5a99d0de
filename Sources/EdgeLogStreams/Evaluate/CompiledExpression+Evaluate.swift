/// Evaluation. Total by design: a type that does not fit, a division by zero or a missing
/// field gives null (SQL's unknown) rather than stopping the processor, as in ksqlDB.
extension CompiledExpression {
    func evaluate(_ context: EvaluationContext) -> StreamValue {
        switch self {
        case .constant(let value): return value
        case .recordKey: return context.record.map { Self.text($0.key) } ?? .null
        case .recordValue:
            guard let bytes = context.record?.value else { return .null }
            return bytes.withUnsafeBytes { JSONPathReader.document($0) }
        case .recordTimestamp: return context.record.map { .int($0.timestampMs) } ?? .null
        case .recordPartition: return context.record.map { .int(Int64($0.partition)) } ?? .null
        case .recordOffset: return context.record.map { .int($0.offset) } ?? .null
        case .recordTopic: return context.record.map { .string($0.topic) } ?? .null
        case .recordHeaders:
            guard let record = context.record else { return .null }
            var writer = StreamJSONWriter()
            writer.object(record.headers.map { ($0.key, Self.text($0.value)) })
            return .json(writer.text)
        case .valuePath(let path):
            guard let bytes = context.record?.value else { return .null }
            return bytes.withUnsafeBytes { JSONPathReader.value(in: $0, at: path) }
        case .keyPath(let path):
            guard let bytes = context.record?.key else { return .null }
            return bytes.withUnsafeBytes { JSONPathReader.value(in: $0, at: path) }
        case .header(let name):
            guard let header = context.record?.headers.last(where: { $0.key == name }) else { return .null }
            return Self.text(header.value)
        case .pathOn(let base, let path):
            switch base.evaluate(context) {
            // A key or header that holds JSON text can be reached into too.
            case .json(let text), .string(let text):
                return Array(text.utf8).withUnsafeBytes { JSONPathReader.value(in: $0, at: path) }
            default: return .null
            }
        case .eventTime: return .int(context.eventTimeMs)
        case .group(let index): return index < context.groups.count ? context.groups[index] : .null
        case .aggregate(let index): return index < context.aggregates.count ? context.aggregates[index] : .null
        case .windowStart: return context.windowStartMs.map(StreamValue.int) ?? .null
        case .windowEnd: return context.windowEndMs.map(StreamValue.int) ?? .null
        case .unary(let op, let operand): return Self.unary(op, operand.evaluate(context))
        case .binary(.and, let left, let right):
            // Three-valued logic, short-circuited: false AND anything is false.
            let l = left.evaluate(context)
            if case .bool(false) = l { return .bool(false) }
            let r = right.evaluate(context)
            if case .bool(false) = r { return .bool(false) }
            if case .bool(true) = l, case .bool(true) = r { return .bool(true) }
            return .null
        case .binary(.or, let left, let right):
            let l = left.evaluate(context)
            if case .bool(true) = l { return .bool(true) }
            let r = right.evaluate(context)
            if case .bool(true) = r { return .bool(true) }
            if case .bool(false) = l, case .bool(false) = r { return .bool(false) }
            return .null
        case .binary(let op, let left, let right):
            return Self.binary(op, left.evaluate(context), right.evaluate(context))
        case .isNull(let operand, let negated):
            return .bool(operand.evaluate(context).isNull != negated)
        case .inList(let operand, let list, let negated):
            let value = operand.evaluate(context)
            guard !value.isNull else { return .null }
            var sawNull = false
            for item in list {
                let candidate = item.evaluate(context)
                if candidate.isNull { sawNull = true }
                if StreamValue.compare(value, candidate) == 0 { return .bool(!negated) }
            }
            return sawNull ? .null : .bool(negated)
        case .between(let operand, let low, let high, let negated):
            let value = operand.evaluate(context)
            guard let above = StreamValue.compare(value, low.evaluate(context)),
                let below = StreamValue.compare(value, high.evaluate(context))
            else { return .null }
            return .bool((above >= 0 && below <= 0) != negated)
        case .like(let operand, let pattern, let negated):
            guard case .string(let text) = operand.evaluate(context), case .string(let pattern) = pattern.evaluate(context) else {
                return .null
            }
            return .bool(Self.like(Array(text.unicodeScalars), Array(pattern.unicodeScalars)) != negated)
        case .caseWhen(let operand, let branches, let otherwise):
            let subject = operand?.evaluate(context)
            for branch in branches {
                let condition = branch.when.evaluate(context)
                let taken = subject.map { StreamValue.compare($0, condition) == 0 } ?? condition.isTrue
                if taken { return branch.then.evaluate(context) }
            }
            return otherwise?.evaluate(context) ?? .null
        case .cast(let operand, let type): return Self.cast(operand.evaluate(context), to: type)
        case .function(let function, let arguments):
            return function.apply(arguments.map { $0.evaluate(context) })
        }
    }

    /// Key and header bytes as text when they are UTF-8 (they nearly always are: device ids).
    static func text(_ bytes: [UInt8]?) -> StreamValue {
        guard let bytes else { return .null }
        return String(validating: bytes, as: UTF8.self).map(StreamValue.string) ?? .null
    }

    static func unary(_ op: SQLExpression.UnaryOperator, _ value: StreamValue) -> StreamValue {
        switch (op, value) {
        case (.not, .bool(let flag)): .bool(!flag)
        case (.negate, .int(let number)): number == .min ? .double(-Double(number)) : .int(-number)
        case (.negate, .double(let number)): .double(-number)
        default: .null
        }
    }

    static func binary(_ op: SQLExpression.BinaryOperator, _ left: StreamValue, _ right: StreamValue) -> StreamValue {
        switch op {
        case .equal: return StreamValue.compare(left, right).map { .bool($0 == 0) } ?? .null
        case .notEqual: return StreamValue.compare(left, right).map { .bool($0 != 0) } ?? .null
        case .less: return StreamValue.compare(left, right).map { .bool($0 < 0) } ?? .null
        case .lessOrEqual: return StreamValue.compare(left, right).map { .bool($0 <= 0) } ?? .null
        case .greater: return StreamValue.compare(left, right).map { .bool($0 > 0) } ?? .null
        case .greaterOrEqual: return StreamValue.compare(left, right).map { .bool($0 >= 0) } ?? .null
        case .concatenate:
            guard !left.isNull, !right.isNull else { return .null }
            return .string(left.text + right.text)
        case .and, .or: return .null  // evaluated with short-circuit above
        case .add, .subtract, .multiply, .divide, .remainder: return arithmetic(op, left, right)
        }
    }

    /// Integers stay integers (an overflow becomes a double rather than a wrong number);
    /// anything with a double is a double; division by zero is null.
    static func arithmetic(_ op: SQLExpression.BinaryOperator, _ left: StreamValue, _ right: StreamValue) -> StreamValue {
        if case .int(let a) = left, case .int(let b) = right {
            switch op {
            case .add:
                let (sum, overflow) = a.addingReportingOverflow(b)
                return overflow ? .double(Double(a) + Double(b)) : .int(sum)
            case .subtract:
                let (difference, overflow) = a.subtractingReportingOverflow(b)
                return overflow ? .double(Double(a) - Double(b)) : .int(difference)
            case .multiply:
                let (product, overflow) = a.multipliedReportingOverflow(by: b)
                return overflow ? .double(Double(a) * Double(b)) : .int(product)
            case .divide:
                guard b != 0 else { return .null }
                return a == .min && b == -1 ? .double(-Double(a)) : .int(a / b)
            case .remainder:
                guard b != 0 else { return .null }
                return b == -1 ? .int(0) : .int(a % b)
            default: return .null
            }
        }
        guard let a = left.numeric, let b = right.numeric else { return .null }
        switch op {
        case .add: return .double(a + b)
        case .subtract: return .double(a - b)
        case .multiply: return .double(a * b)
        case .divide: return b == 0 ? .null : .double(a / b)
        case .remainder: return b == 0 ? .null : .double(a.truncatingRemainder(dividingBy: b))
        default: return .null
        }
    }

    /// SQL LIKE: `%` any run of characters, `_` one character.
    static func like(_ text: [Unicode.Scalar], _ pattern: [Unicode.Scalar]) -> Bool {
        // Iterative matching with one backtrack point per `%`: linear in practice, never
        // exponential, whatever the pattern.
        var t = 0
        var p = 0
        var starP = -1
        var starT = 0
        while t < text.count {
            if p < pattern.count && (pattern[p] == "_" || (pattern[p] != "%" && pattern[p] == text[t])) {
                t += 1
                p += 1
            } else if p < pattern.count && pattern[p] == "%" {
                starP = p
                starT = t
                p += 1
            } else if starP >= 0 {
                p = starP + 1
                starT += 1
                t = starT
            } else {
                return false
            }
        }
        while p < pattern.count && pattern[p] == "%" { p += 1 }
        return p == pattern.count
    }

    static func cast(_ value: StreamValue, to type: CastType) -> StreamValue {
        switch type {
        case .bigint:
            if case .double(let number) = value { return number.isFinite && abs(number) < 9.2e18 ? .int(Int64(number)) : .null }
            if case .bool(let flag) = value { return .int(flag ? 1 : 0) }
            return value.int.map(StreamValue.int) ?? .null
        case .double:
            if case .bool(let flag) = value { return .double(flag ? 1 : 0) }
            return value.double.map(StreamValue.double) ?? .null
        case .string:
            return value.isNull ? .null : .string(value.text)
        case .boolean:
            switch value {
            case .bool: return value
            case .int(let number): return .bool(number != 0)
            case .string(let text):
                switch text.lowercased() {
                case "true", "yes", "1": return .bool(true)
                case "false", "no", "0": return .bool(false)
                default: return .null
                }
            default: return .null
            }
        case .timestamp:
            if case .string(let text) = value, let ms = TimeFormat.parseISO8601(text) { return .int(ms) }
            return value.int.map(StreamValue.int) ?? .null
        }
    }
}

extension StreamValue {
    /// A number for arithmetic: integers and doubles only.
    var numeric: Double? {
        switch self {
        case .int(let value): Double(value)
        case .double(let value): value
        default: nil
        }
    }
}
