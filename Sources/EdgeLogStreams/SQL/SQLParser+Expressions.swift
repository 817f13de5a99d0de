/// Expressions, by precedence from loosest: OR, AND, NOT, comparisons (= != <> < <= > >=,
/// IS [NOT] NULL, [NOT] IN, [NOT] BETWEEN, [NOT] LIKE), ||, + -, * / %, unary minus, then
/// paths (`->'a'`, `->0`, `.a` and `[0]` after `$`) on a primary.
extension SQLParser {
    /// Nesting deeper than this is refused rather than risking the stack.
    static let maxDepth = 200

    mutating func expression() throws(SQLSyntaxError) -> SQLExpression { try or(depth: 0) }

    mutating func checkDepth(_ depth: Int) throws(SQLSyntaxError) {
        guard depth < Self.maxDepth else { throw error("the expression nests deeper than \(Self.maxDepth) levels") }
    }

    mutating func or(depth: Int) throws(SQLSyntaxError) -> SQLExpression {
        try checkDepth(depth)
        var left = try and(depth: depth + 1)
        while accept(keyword: "OR") { left = .binary(.or, left, try and(depth: depth + 1)) }
        return left
    }

    mutating func and(depth: Int) throws(SQLSyntaxError) -> SQLExpression {
        var left = try not(depth: depth)
        while accept(keyword: "AND") { left = .binary(.and, left, try not(depth: depth)) }
        return left
    }

    mutating func not(depth: Int) throws(SQLSyntaxError) -> SQLExpression {
        if accept(keyword: "NOT") {
            try checkDepth(depth)
            return .unary(.not, try not(depth: depth + 1))
        }
        return try comparison(depth: depth)
    }

    static let comparisons: [String: SQLExpression.BinaryOperator] = [
        "=": .equal, "!=": .notEqual, "<>": .notEqual, "<": .less, "<=": .lessOrEqual, ">": .greater, ">=": .greaterOrEqual,
    ]

    mutating func comparison(depth: Int) throws(SQLSyntaxError) -> SQLExpression {
        let left = try concatenation(depth: depth)
        if case .symbol(let symbol) = current.kind, let op = Self.comparisons[symbol] {
            advance()
            return .binary(op, left, try concatenation(depth: depth))
        }
        if accept(keyword: "IS") {
            let negated = accept(keyword: "NOT")
            try expect(keyword: "NULL")
            return .isNull(left, negated: negated)
        }
        let negated = accept(keyword: "NOT")
        if accept(keyword: "IN") {
            try expect(symbol: "(")
            var list: [SQLExpression] = []
            repeat { list.append(try or(depth: depth + 1)) } while accept(symbol: ",")
            try expect(symbol: ")")
            return .inList(left, list, negated: negated)
        }
        if accept(keyword: "BETWEEN") {
            let low = try concatenation(depth: depth)
            try expect(keyword: "AND")
            return .between(left, low, try concatenation(depth: depth), negated: negated)
        }
        if accept(keyword: "LIKE") { return .like(left, try concatenation(depth: depth), negated: negated) }
        if negated { throw expected("IN, BETWEEN or LIKE after NOT") }
        return left
    }

    mutating func concatenation(depth: Int) throws(SQLSyntaxError) -> SQLExpression {
        var left = try additive(depth: depth)
        while accept(symbol: "||") { left = .binary(.concatenate, left, try additive(depth: depth)) }
        return left
    }

    mutating func additive(depth: Int) throws(SQLSyntaxError) -> SQLExpression {
        var left = try multiplicative(depth: depth)
        while true {
            if accept(symbol: "+") {
                left = .binary(.add, left, try multiplicative(depth: depth))
            } else if accept(symbol: "-") {
                left = .binary(.subtract, left, try multiplicative(depth: depth))
            } else {
                return left
            }
        }
    }

    mutating func multiplicative(depth: Int) throws(SQLSyntaxError) -> SQLExpression {
        var left = try unary(depth: depth)
        while true {
            if accept(symbol: "*") {
                left = .binary(.multiply, left, try unary(depth: depth))
            } else if accept(symbol: "/") {
                left = .binary(.divide, left, try unary(depth: depth))
            } else if accept(symbol: "%") {
                left = .binary(.remainder, left, try unary(depth: depth))
            } else {
                return left
            }
        }
    }

    mutating func unary(depth: Int) throws(SQLSyntaxError) -> SQLExpression {
        if accept(symbol: "-") {
            try checkDepth(depth)
            // A negative number stays a literal.
            if case .integer(let value) = current.kind {
                advance()
                return .literal(.integer(0 - value))
            }
            return .unary(.negate, try unary(depth: depth + 1))
        }
        return try postfix(depth: depth)
    }

    mutating func postfix(depth: Int) throws(SQLSyntaxError) -> SQLExpression {
        var base = try primary(depth: depth)
        var steps: [SQLExpression.PathStep] = []
        while accept(symbol: "->") {
            switch current.kind {
            case .string(let field): steps.append(.field(field))
            case .integer(let index) where index >= 0 && index <= Int64(Int32.max): steps.append(.index(Int(index)))
            default: throw expected("a field name in quotes or an array index after '->'")
            }
            advance()
        }
        if !steps.isEmpty {
            if case .path(let inner, let earlier) = base { base = .path(inner, earlier + steps) } else { base = .path(base, steps) }
        }
        return base
    }

    mutating func primary(depth: Int = 0) throws(SQLSyntaxError) -> SQLExpression {
        try checkDepth(depth)
        let token = current
        switch token.kind {
        case .integer(let value):
            advance()
            return .literal(.integer(value))
        case .decimal(let value):
            advance()
            return .literal(.decimal(value))
        case .string(let text):
            advance()
            return .literal(.string(text))
        case .quotedName(let name):
            advance()
            return .column(name)
        case .symbol("("):
            advance()
            let inner = try or(depth: depth + 1)
            try expect(symbol: ")")
            return inner
        case .symbol("*"):
            advance()
            return .star
        case .symbol("$"):
            advance()
            return .path(.column("value"), try jsonPath())
        case .word(let word):
            return try wordPrimary(word.uppercased(), depth: depth)
        default:
            throw expected("a value, a name or '('")
        }
    }

    private mutating func wordPrimary(_ keyword: String, depth: Int) throws(SQLSyntaxError) -> SQLExpression {
        switch keyword {
        case "TRUE", "FALSE":
            advance()
            return .literal(.boolean(keyword == "TRUE"))
        case "NULL":
            advance()
            return .literal(.null)
        case "CASE":
            advance()
            return try caseExpression(depth: depth + 1)
        case "CAST":
            advance()
            try expect(symbol: "(")
            let value = try or(depth: depth + 1)
            try expect(keyword: "AS")
            guard case .word(let type) = current.kind else { throw expected("a type such as BIGINT, DOUBLE, STRING, BOOLEAN") }
            advance()
            try expect(symbol: ")")
            return .cast(value, type.uppercased())
        case "PARTITION", "TIMESTAMP" where position + 1 < tokens.count && tokens[position + 1].keyword != "BY":
            // The record's partition and timestamp, outside PARTITION BY and TIMESTAMP BY.
            advance()
            return .column(keyword.lowercased())
        default:
            guard !Self.reserved.contains(keyword) else { throw expected("a value, a name or '('") }
            let name = try self.name("a name")
            guard accept(symbol: "(") else { return .column(name) }
            var arguments: [SQLExpression] = []
            if !accept(symbol: ")") {
                repeat { arguments.append(try or(depth: depth + 1)) } while accept(symbol: ",")
                try expect(symbol: ")")
            }
            return .call(name.uppercased(), arguments)
        }
    }

    private mutating func caseExpression(depth: Int) throws(SQLSyntaxError) -> SQLExpression {
        guard !isKeyword("END") else { throw expected("WHEN") }
        let operand: SQLExpression? = isKeyword("WHEN") ? nil : try or(depth: depth)
        var branches: [SQLExpression.WhenThen] = []
        while accept(keyword: "WHEN") {
            let condition = try or(depth: depth)
            try expect(keyword: "THEN")
            branches.append(.init(when: condition, then: try or(depth: depth)))
        }
        guard !branches.isEmpty else { throw expected("WHEN") }
        let otherwise: SQLExpression? = accept(keyword: "ELSE") ? try or(depth: depth) : nil
        try expect(keyword: "END")
        return .caseWhen(operand: operand, branches: branches, otherwise: otherwise)
    }

    /// `$.a.b[0]` or `$['a b']`: a path into the record's value.
    private mutating func jsonPath() throws(SQLSyntaxError) -> [SQLExpression.PathStep] {
        var steps: [SQLExpression.PathStep] = []
        while true {
            if accept(symbol: ".") {
                switch current.kind {
                case .word(let field), .quotedName(let field): steps.append(.field(field))
                default: throw expected("a field name after '.'")
                }
                advance()
            } else if accept(symbol: "[") {
                switch current.kind {
                case .string(let field): steps.append(.field(field))
                case .integer(let index) where index >= 0 && index <= Int64(Int32.max): steps.append(.index(Int(index)))
                default: throw expected("a field name in quotes or an array index")
                }
                advance()
                try expect(symbol: "]")
            } else {
                guard !steps.isEmpty else { throw expected("'.' or '[' after '$'") }
                return steps
            }
        }
    }
}
