extension ProcessorPlan {
    /// Properties a query may set in `WITH (...)`; any other is refused, so a typo is not
    /// silently ignored.
    static let knownProperties: Set<String> = [
        "KAFKA_TOPIC", "TOPIC", "DEAD_LETTER_TOPIC", "OUT_OF_ORDER", "LATE", "LATE_TOPIC", "RETENTION", "MAX_FUTURE",
        "IDLE_TIMEOUT", "MAX_KEYS", "MAX_STATE_BYTES", "ON_STATE_FULL",
    ]

    static let defaultMaxKeys = 100_000
    static let defaultMaxStateBytes = 64 << 20
    static let defaultMaxFutureMs: Int64 = 3_600_000
    static let defaultIdleTimeoutMs: Int64 = 10_000

    /// Parses and plans a query.
    public static func make(_ query: String) throws(StreamQueryError) -> ProcessorPlan {
        let statement: SQLCreateStream
        do {
            statement = try SQLParser.parseCreateStream(query)
        } catch {
            throw .syntax(error)
        }
        do {
            return try make(statement, query: query)
        } catch {
            throw .plan(error)
        }
    }

    static func make(_ statement: SQLCreateStream, query: String) throws(StreamPlanError) -> ProcessorPlan {
        let properties = statement.properties
        for key in properties.keys.sorted() where !knownProperties.contains(key) {
            throw StreamPlanError("unknown property \(key) in WITH (known: \(knownProperties.sorted().joined(separator: ", ")))")
        }
        let select = statement.select
        var compiler = ExpressionCompiler()
        let filter = try select.filter.map { (filter) throws(StreamPlanError) in try compiler.compile(filter, .record) }
        let timestampBy = try select.timestampBy.map { (expression) throws(StreamPlanError) in try compiler.compile(expression, .record) }

        let grouped = !select.groupBy.isEmpty || select.window != nil
        var keyFilters: KeyFilters? = nil
        if select.dedupe != nil || select.throttle != nil || select.deadband != nil {
            if grouped { throw StreamPlanError("DEDUPE, THROTTLE and DEADBAND filter records one by one: not with GROUP BY or WINDOW") }
            var filters = KeyFilters()
            if let dedupe = select.dedupe {
                filters.dedupeId = try compiler.compile(dedupe.id, .record)
                filters.dedupeWithinMs = dedupe.within.milliseconds
            }
            if let throttle = select.throttle {
                filters.throttleCount = throttle.count
                filters.throttlePerMs = throttle.per.milliseconds
            }
            if let deadband = select.deadband {
                filters.deadbandValue = try compiler.compile(deadband.value, .record)
                filters.deadbandThreshold = deadband.threshold
                filters.deadbandEveryMs = deadband.every?.milliseconds
            }
            keyFilters = filters
        }
        let shape: Shape
        var emit = statement.emit
        if grouped {
            if select.partitionBy != nil {
                throw StreamPlanError("PARTITION BY re-keys records one by one; a grouped query is keyed by its GROUP BY")
            }
            for expression in select.groupBy { compiler.groupBy.append(try compiler.compile(expression, .record)) }
            compiler.windowed = select.window != nil
            var columns: [OutputColumn] = []
            for (index, item) in select.items.enumerated() {
                if item.expression == .star { throw StreamPlanError("SELECT * cannot be grouped: name the columns and their aggregates") }
                let compiled = try compiler.compile(item.expression, .grouped)
                let name = try columnName(item, index: index, taken: columns.map(\.name))
                columns.append(OutputColumn(name: name, expression: compiled))
                compiler.aliases[name] = compiled
            }
            let having = try select.having.map { (having) throws(StreamPlanError) in try compiler.compile(having, .grouped) }
            if emit == nil { emit = select.window == nil ? .changes : .final }
            if emit == .final && select.window == nil {
                throw StreamPlanError("EMIT FINAL needs a WINDOW: without one a group never closes")
            }
            shape = .aggregate(
                groupBy: compiler.groupBy, aggregates: compiler.aggregates, window: select.window, columns: columns, having: having)
        } else {
            if emit == .final { throw StreamPlanError("EMIT FINAL needs a WINDOW") }
            emit = .changes
            var columns: [OutputColumn] = []
            var star = false
            for (index, item) in select.items.enumerated() {
                if item.expression == .star {
                    guard !star else { throw StreamPlanError("'*' is given twice in SELECT") }
                    star = true
                    continue
                }
                let compiled = try compiler.compile(item.expression, .record)
                columns.append(OutputColumn(name: try columnName(item, index: index, taken: columns.map(\.name)), expression: compiled))
            }
            let partitionBy = try select.partitionBy.map { (expression) throws(StreamPlanError) in
                try compiler.compile(expression, .record)
            }
            shape = .stateless(columns: columns, star: star, passThrough: star && columns.isEmpty, partitionBy: partitionBy)
        }

        let outputTopic = try topic(properties["KAFKA_TOPIC"] ?? properties["TOPIC"], "KAFKA_TOPIC") ?? statement.name
        for input in select.sources where input == outputTopic {
            throw StreamPlanError("the processor would read its own output topic \(outputTopic)")
        }
        let grace = select.window.flatMap(\.grace)?.milliseconds ?? 0
        let latePolicy: LatePolicy
        let lateTopic = try topic(properties["LATE_TOPIC"], "LATE_TOPIC")
        switch try text(properties["LATE"], "LATE")?.lowercased() {
        case nil: latePolicy = lateTopic.map(LatePolicy.sideTopic) ?? .drop
        case "drop": latePolicy = .drop
        case "topic", "side", "side-topic":
            latePolicy = .sideTopic(lateTopic ?? outputTopic + ".late")
        case "update":
            let retention = try duration(properties["RETENTION"], "RETENTION") ?? select.window?.sizeMs ?? 0
            latePolicy = .update(retentionMs: retention)
        case let other?:
            throw StreamPlanError("LATE must be 'drop', 'topic' or 'update', not '\(other)'")
        }
        let onStateFull: StateFullPolicy
        if let policy = try text(properties["ON_STATE_FULL"], "ON_STATE_FULL") {
            guard let known = StateFullPolicy(rawValue: policy.lowercased()) else {
                throw StreamPlanError("ON_STATE_FULL must be 'evict', 'drop-new' or 'pause', not '\(policy)'")
            }
            onStateFull = known
        } else {
            onStateFull = .evict
        }
        var plan = ProcessorPlan(
            name: statement.name, query: query, inputs: select.sources, outputTopic: outputTopic,
            deadLetterTopic: try topic(properties["DEAD_LETTER_TOPIC"], "DEAD_LETTER_TOPIC") ?? outputTopic + ".dead-letter",
            emit: emit ?? .changes, shape: shape, filter: filter, timestampBy: timestampBy,
            outOfOrderMs: try duration(properties["OUT_OF_ORDER"], "OUT_OF_ORDER") ?? 0, graceMs: grace, latePolicy: latePolicy,
            maxFutureMs: try duration(properties["MAX_FUTURE"], "MAX_FUTURE") ?? defaultMaxFutureMs,
            idleTimeoutMs: try duration(properties["IDLE_TIMEOUT"], "IDLE_TIMEOUT") ?? defaultIdleTimeoutMs,
            maxKeys: try count(properties["MAX_KEYS"], "MAX_KEYS") ?? defaultMaxKeys,
            maxStateBytes: try count(properties["MAX_STATE_BYTES"], "MAX_STATE_BYTES") ?? defaultMaxStateBytes,
            onStateFull: onStateFull)
        plan.keyFilters = keyFilters
        if case .aggregate(_, let aggregates, _, _, _) = shape {
            plan.argumentSources = aggregates.indices.map { index in
                aggregates[..<index].firstIndex { $0.argument != nil && $0.argument == aggregates[index].argument }
            }
        }
        plan.estimatedKeyBytes = plan.estimateKeyBytes()
        return plan
    }

    /// The output name of a column: its alias, else the name it reads (`t` for `value->'t'`),
    /// else the function's name.
    static func columnName(_ item: SQLSelectItem, index: Int, taken: [String]) throws(StreamPlanError) -> String {
        let name: String
        if let alias = item.alias {
            name = alias
        } else {
            switch item.expression {
            case .column(let column): name = column
            case .path(_, let steps):
                if case .field(let field) = steps.last { name = field } else { name = "col_\(index)" }
            case .call(let function, _): name = function.lowercased()
            case .cast(.column(let column), _): name = column
            case .cast(.path(_, let steps), _):
                if case .field(let field) = steps.last { name = field } else { name = "col_\(index)" }
            default: name = "col_\(index)"
            }
        }
        guard !taken.contains(name) else {
            throw StreamPlanError("two output columns are named \(name): give one another name with AS")
        }
        return name
    }

    private static func text(_ literal: SQLExpression.Literal?, _ key: String) throws(StreamPlanError) -> String? {
        guard let literal else { return nil }
        guard case .string(let text) = literal else { throw StreamPlanError("\(key) must be a string in quotes") }
        return text
    }

    private static func topic(_ literal: SQLExpression.Literal?, _ key: String) throws(StreamPlanError) -> String? {
        guard let name = try text(literal, key) else { return nil }
        let allowed = name.utf8.allSatisfy { byte in
            (0x30...0x39).contains(byte) || (0x41...0x5A).contains(byte) || (0x61...0x7A).contains(byte)
                || byte == UInt8(ascii: ".") || byte == UInt8(ascii: "_") || byte == UInt8(ascii: "-")
        }
        guard !name.isEmpty, name.utf8.count <= 200, allowed, name != ".", name != ".." else {
            throw StreamPlanError("\(key) '\(name)' is not a topic name (letters, digits, '.', '_', '-'; at most 200)")
        }
        return name
    }

    private static func count(_ literal: SQLExpression.Literal?, _ key: String) throws(StreamPlanError) -> Int? {
        guard let literal else { return nil }
        guard case .integer(let value) = literal, value > 0, value <= Int64(Int32.max) * 64 else {
            throw StreamPlanError("\(key) must be a positive whole number")
        }
        return Int(value)
    }

    /// A duration: a number of milliseconds, or text such as '5 SECONDS', '500ms', '2m'.
    static func duration(_ literal: SQLExpression.Literal?, _ key: String) throws(StreamPlanError) -> Int64? {
        guard let literal else { return nil }
        switch literal {
        case .integer(let value) where value >= 0: return value
        case .string(let text):
            if let ms = parseDuration(text) { return ms }
        default: break
        }
        throw StreamPlanError("\(key) must be a duration such as '10 SECONDS', '500ms' or a number of milliseconds")
    }

    static func parseDuration(_ text: String) -> Int64? {
        let trimmed = text.trimmed(leading: true, trailing: true)
        let digits = trimmed.prefix { $0.isNumber }
        guard !digits.isEmpty, let amount = Int64(digits) else { return nil }
        let unitText = trimmed.dropFirst(digits.count).trimmed(leading: true, trailing: true).uppercased()
        let short: [String: Int64] = ["": 1, "MS": 1, "S": 1000, "M": 60_000, "MIN": 60_000, "H": 3_600_000, "D": 86_400_000]
        guard let unit = short[unitText] ?? SQLParser.units[unitText] else { return nil }
        let (ms, overflow) = amount.multipliedReportingOverflow(by: unit)
        return overflow ? nil : ms
    }
}

extension Substring {
    func trimmed(leading: Bool, trailing: Bool) -> Substring {
        var slice = self
        while leading, let first = slice.first, first.isWhitespace { slice.removeFirst() }
        while trailing, let last = slice.last, last.isWhitespace { slice.removeLast() }
        return slice
    }
}

extension SQLWindow {
    var grace: SQLDuration? {
        switch self {
        case .tumbling(_, let grace), .hopping(_, _, let grace), .session(_, let grace): grace
        case .count: nil
        }
    }

    var sizeMs: Int64? {
        switch self {
        case .tumbling(let size, _), .hopping(let size, _, _): size.milliseconds
        case .session(let gap, _): gap.milliseconds
        case .count: nil
        }
    }
}

/// Why a query cannot become a processor: it does not parse (with line and column), or it
/// parses but cannot run.
public enum StreamQueryError: Error, Sendable, Equatable, CustomStringConvertible {
    case syntax(SQLSyntaxError)
    case plan(StreamPlanError)

    public var description: String {
        switch self {
        case .syntax(let error): error.description
        case .plan(let error): error.description
        }
    }
}
