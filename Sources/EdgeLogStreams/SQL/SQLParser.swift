/// Parses the processor language: one `CREATE STREAM name [WITH (...)] AS SELECT ...
/// FROM topic [, topic] [TIMESTAMP BY expr] [WINDOW ...] [WHERE ...] [GROUP BY ...]
/// [HAVING ...] [PARTITION BY ...] [DEDUPE BY id WITHIN t] [THROTTLE n PER t]
/// [DEADBAND expr BY threshold [EVERY t]] [EMIT CHANGES | EMIT FINAL] [;]`.
///
/// Hand-written recursive descent rather than a parser-combinator library: every error names
/// the line and column and what was expected there, and the language is small.
public struct SQLParser {
    var tokens: [SQLToken]
    var position = 0

    init(tokens: [SQLToken]) { self.tokens = tokens }

    public static func parseCreateStream(_ text: String) throws(SQLSyntaxError) -> SQLCreateStream {
        var parser = SQLParser(tokens: try SQLLexer.tokens(text))
        let statement = try parser.createStream()
        _ = parser.accept(symbol: ";")
        try parser.expectEnd()
        return statement
    }

    public static func parseExpression(_ text: String) throws(SQLSyntaxError) -> SQLExpression {
        var parser = SQLParser(tokens: try SQLLexer.tokens(text))
        let expression = try parser.expression()
        try parser.expectEnd()
        return expression
    }

    // MARK: Tokens

    var current: SQLToken { tokens[position] }

    func error(_ message: String, at token: SQLToken? = nil) -> SQLSyntaxError {
        let token = token ?? current
        return SQLSyntaxError(line: token.line, column: token.column, message: message)
    }

    func expected(_ what: String) -> SQLSyntaxError { error("expected \(what), found \(current.describe)") }

    mutating func advance() { if position < tokens.count - 1 { position += 1 } }

    func isKeyword(_ word: String) -> Bool { current.keyword == word }

    mutating func accept(keyword: String) -> Bool {
        guard isKeyword(keyword) else { return false }
        advance()
        return true
    }

    mutating func expect(keyword: String) throws(SQLSyntaxError) {
        guard accept(keyword: keyword) else { throw expected(keyword) }
    }

    mutating func accept(symbol: String) -> Bool {
        guard current.kind == .symbol(symbol) else { return false }
        advance()
        return true
    }

    mutating func expect(symbol: String) throws(SQLSyntaxError) {
        guard accept(symbol: symbol) else { throw expected("'\(symbol)'") }
    }

    func expectEnd() throws(SQLSyntaxError) {
        guard current.kind == .end else { throw expected("the end of the query") }
    }

    /// Words that end a clause, so never taken as a name or an alias.
    static let reserved: Set<String> = [
        "SELECT", "FROM", "WHERE", "GROUP", "BY", "HAVING", "WINDOW", "EMIT", "PARTITION", "TIMESTAMP", "AS", "AND", "OR",
        "NOT", "IS", "NULL", "IN", "BETWEEN", "LIKE", "CASE", "WHEN", "THEN", "ELSE", "END", "CAST", "TRUE", "FALSE",
        "CREATE", "STREAM", "WITH", "DEDUPE", "THROTTLE", "DEADBAND",
    ]

    /// A name: a bare word that is not reserved, or a quoted name.
    mutating func name(_ what: String) throws(SQLSyntaxError) -> String {
        switch current.kind {
        case .quotedName(let name):
            advance()
            return name
        case .word(let word) where !Self.reserved.contains(word.uppercased()):
            advance()
            return word
        default:
            throw expected(what)
        }
    }

    // MARK: Statement

    mutating func createStream() throws(SQLSyntaxError) -> SQLCreateStream {
        try expect(keyword: "CREATE")
        try expect(keyword: "STREAM")
        let name = try name("the stream's name")
        var properties: [String: SQLExpression.Literal] = [:]
        if accept(keyword: "WITH") {
            try expect(symbol: "(")
            repeat {
                let keyToken = current
                let key = try self.name("a property name").uppercased()
                try expect(symbol: "=")
                guard case .literal(let value) = try primary() else { throw error("a property's value must be a literal", at: keyToken) }
                guard properties.updateValue(value, forKey: key) == nil else {
                    throw error("the property \(key) is given twice", at: keyToken)
                }
            } while accept(symbol: ",")
            try expect(symbol: ")")
        }
        try expect(keyword: "AS")
        let select = try self.select()
        var emit: SQLCreateStream.Emit? = nil
        if accept(keyword: "EMIT") {
            if accept(keyword: "CHANGES") {
                emit = .changes
            } else if accept(keyword: "FINAL") {
                emit = .final
            } else {
                throw expected("CHANGES or FINAL")
            }
        }
        return SQLCreateStream(name: name, properties: properties, select: select, emit: emit)
    }

    mutating func select() throws(SQLSyntaxError) -> SQLSelect {
        try expect(keyword: "SELECT")
        var items: [SQLSelectItem] = []
        repeat {
            let expression = try self.expression()
            var alias: String? = nil
            if accept(keyword: "AS") {
                alias = try name("a name after AS")
            } else if case .word(let word) = current.kind, !Self.reserved.contains(word.uppercased()) {
                alias = try name("a name")
            }
            items.append(SQLSelectItem(expression: expression, alias: alias))
        } while accept(symbol: ",")
        try expect(keyword: "FROM")
        var sources: [String] = []
        repeat { sources.append(try name("a topic name")) } while accept(symbol: ",")
        var select = SQLSelect(
            items: items, sources: sources, timestampBy: nil, window: nil, filter: nil, groupBy: [], having: nil,
            partitionBy: nil)
        while true {
            let clause = current
            if accept(keyword: "TIMESTAMP") {
                try expect(keyword: "BY")
                try once(select.timestampBy == nil, "TIMESTAMP BY", clause)
                select.timestampBy = try expression()
            } else if accept(keyword: "WINDOW") {
                try once(select.window == nil, "WINDOW", clause)
                select.window = try window()
            } else if accept(keyword: "WHERE") {
                try once(select.filter == nil, "WHERE", clause)
                select.filter = try expression()
            } else if accept(keyword: "GROUP") {
                try expect(keyword: "BY")
                try once(select.groupBy.isEmpty, "GROUP BY", clause)
                repeat { select.groupBy.append(try expression()) } while accept(symbol: ",")
            } else if accept(keyword: "HAVING") {
                try once(select.having == nil, "HAVING", clause)
                select.having = try expression()
            } else if accept(keyword: "PARTITION") {
                try expect(keyword: "BY")
                try once(select.partitionBy == nil, "PARTITION BY", clause)
                select.partitionBy = try expression()
            } else if accept(keyword: "DEDUPE") {
                try expect(keyword: "BY")
                try once(select.dedupe == nil, "DEDUPE", clause)
                let id = try expression()
                try expect(keyword: "WITHIN")
                select.dedupe = SQLDedupe(id: id, within: try duration())
            } else if accept(keyword: "THROTTLE") {
                try once(select.throttle == nil, "THROTTLE", clause)
                guard case .integer(let count) = current.kind, count > 0 else { throw expected("a positive number of records") }
                advance()
                try expect(keyword: "PER")
                select.throttle = SQLThrottle(count: count, per: try duration())
            } else if accept(keyword: "DEADBAND") {
                try once(select.deadband == nil, "DEADBAND", clause)
                let value = try expression()
                try expect(keyword: "BY")
                let thresholdToken = current
                let threshold: Double
                switch current.kind {
                case .integer(let number): threshold = Double(number)
                case .decimal(let number): threshold = number
                default: throw expected("a threshold (a number)")
                }
                advance()
                guard threshold >= 0 else { throw error("a deadband's threshold cannot be negative", at: thresholdToken) }
                var every: SQLDuration? = nil
                if accept(keyword: "EVERY") { every = try duration() }
                select.deadband = SQLDeadband(value: value, threshold: threshold, every: every)
            } else {
                break
            }
        }
        if select.having != nil && select.groupBy.isEmpty && select.window == nil {
            throw error("HAVING needs GROUP BY or a WINDOW")
        }
        return select
    }

    func once(_ first: Bool, _ clause: String, _ token: SQLToken) throws(SQLSyntaxError) {
        guard first else { throw error("\(clause) is given twice", at: token) }
    }

    // MARK: Windows and durations

    mutating func window() throws(SQLSyntaxError) -> SQLWindow {
        if accept(keyword: "TUMBLING") {
            try expect(symbol: "(")
            try expect(keyword: "SIZE")
            let size = try duration()
            let grace = try optionalGrace()
            try expect(symbol: ")")
            return .tumbling(size: size, grace: grace)
        }
        if accept(keyword: "HOPPING") {
            try expect(symbol: "(")
            try expect(keyword: "SIZE")
            let size = try duration()
            try expect(symbol: ",")
            try expect(keyword: "ADVANCE")
            try expect(keyword: "BY")
            let advanceToken = current
            let advance = try duration()
            guard advance.milliseconds <= size.milliseconds else {
                throw error("a hopping window cannot advance by more than its size", at: advanceToken)
            }
            let grace = try optionalGrace()
            try expect(symbol: ")")
            return .hopping(size: size, advance: advance, grace: grace)
        }
        if accept(keyword: "SESSION") {
            try expect(symbol: "(")
            let gap = try duration()
            let grace = try optionalGrace()
            try expect(symbol: ")")
            return .session(gap: gap, grace: grace)
        }
        if accept(keyword: "COUNT") {
            try expect(symbol: "(")
            guard case .integer(let count) = current.kind, count > 0 else { throw expected("a positive number of records") }
            advance()
            try expect(symbol: ")")
            return .count(count)
        }
        throw expected("TUMBLING, HOPPING, SESSION or COUNT")
    }

    mutating func optionalGrace() throws(SQLSyntaxError) -> SQLDuration? {
        guard accept(symbol: ",") else { return nil }
        try expect(keyword: "GRACE")
        try expect(keyword: "PERIOD")
        return try duration()
    }

    static let units: [String: Int64] = [
        "MILLISECOND": 1, "MILLISECONDS": 1, "SECOND": 1000, "SECONDS": 1000, "MINUTE": 60_000, "MINUTES": 60_000,
        "HOUR": 3_600_000, "HOURS": 3_600_000, "DAY": 86_400_000, "DAYS": 86_400_000,
    ]

    mutating func duration() throws(SQLSyntaxError) -> SQLDuration {
        let start = current
        guard case .integer(let amount) = current.kind else { throw expected("a duration such as 10 SECONDS") }
        advance()
        guard let unit = current.keyword.flatMap({ Self.units[$0] }) else {
            throw expected("a unit (MILLISECONDS, SECONDS, MINUTES, HOURS, DAYS)")
        }
        advance()
        let (milliseconds, overflow) = amount.multipliedReportingOverflow(by: unit)
        guard !overflow, milliseconds > 0 else { throw error("the duration must be positive and below 292 million years", at: start) }
        return SQLDuration(milliseconds: milliseconds)
    }
}
