/// Splits a query into tokens. Comments (`-- to the end of the line`, `/* ... */`) and white
/// space separate tokens and are dropped.
struct SQLLexer {
    private let bytes: [UInt8]
    private var index = 0
    private var line = 1
    private var lineStart = 0

    init(_ text: String) { bytes = Array(text.utf8) }

    static func tokens(_ text: String) throws(SQLSyntaxError) -> [SQLToken] {
        var lexer = SQLLexer(text)
        var tokens: [SQLToken] = []
        while true {
            let token = try lexer.next()
            tokens.append(token)
            if token.kind == .end { return tokens }
        }
    }

    private var column: Int { index - lineStart + 1 }

    private func error(_ message: String) -> SQLSyntaxError {
        SQLSyntaxError(line: line, column: column, message: message)
    }

    private func peek(_ offset: Int = 0) -> UInt8? {
        index + offset < bytes.count ? bytes[index + offset] : nil
    }

    private mutating func advance() {
        if bytes[index] == UInt8(ascii: "\n") {
            line += 1
            lineStart = index + 1
        }
        index += 1
    }

    private mutating func skipSpaceAndComments() throws(SQLSyntaxError) {
        while let byte = peek() {
            if byte == UInt8(ascii: " ") || byte == UInt8(ascii: "\t") || byte == UInt8(ascii: "\n") || byte == UInt8(ascii: "\r") {
                advance()
            } else if byte == UInt8(ascii: "-") && peek(1) == UInt8(ascii: "-") {
                while let next = peek(), next != UInt8(ascii: "\n") { advance() }
            } else if byte == UInt8(ascii: "/") && peek(1) == UInt8(ascii: "*") {
                let start = error("a comment opened here is never closed")
                advance()
                advance()
                while !(peek() == UInt8(ascii: "*") && peek(1) == UInt8(ascii: "/")) {
                    guard peek() != nil else { throw start }
                    advance()
                }
                advance()
                advance()
            } else {
                return
            }
        }
    }

    mutating func next() throws(SQLSyntaxError) -> SQLToken {
        try skipSpaceAndComments()
        let (startLine, startColumn) = (line, column)
        func token(_ kind: SQLToken.Kind) -> SQLToken { SQLToken(kind: kind, line: startLine, column: startColumn) }
        guard let byte = peek() else { return token(.end) }
        if Self.isWordStart(byte) {
            let start = index
            while let next = peek(), Self.isWordPart(next) { advance() }
            return token(.word(String(decoding: bytes[start..<index], as: UTF8.self)))
        }
        if Self.isDigit(byte) || (byte == UInt8(ascii: ".") && peek(1).map(Self.isDigit) == true) {
            return token(try number())
        }
        switch byte {
        case UInt8(ascii: "'"):
            return token(.string(try quoted(UInt8(ascii: "'"), what: "string")))
        case UInt8(ascii: "`"), UInt8(ascii: "\""):
            let name = try quoted(byte, what: "quoted name")
            guard !name.isEmpty else { throw SQLSyntaxError(line: startLine, column: startColumn, message: "an empty quoted name") }
            return token(.quotedName(name))
        default:
            break
        }
        let two = peek(1).map { String(decoding: [byte, $0], as: UTF8.self) }
        if let two, ["!=", "<>", "<=", ">=", "||", "->"].contains(two) {
            advance()
            advance()
            return token(.symbol(two))
        }
        let single = String(decoding: [byte], as: UTF8.self)
        guard "(),.;*+-/%=<>$[]".contains(single) else {
            throw error("unexpected character '\(single.unicodeScalars.first.map { $0.isASCII && $0.value >= 32 ? String($0) : "\\u{\(String($0.value, radix: 16))}" } ?? "?")'")
        }
        advance()
        return token(.symbol(single))
    }

    private mutating func number() throws(SQLSyntaxError) -> SQLToken.Kind {
        let start = index
        var isDecimal = false
        while let next = peek(), Self.isDigit(next) { advance() }
        if peek() == UInt8(ascii: "."), peek(1).map(Self.isDigit) == true || start == index {
            isDecimal = true
            advance()
            while let next = peek(), Self.isDigit(next) { advance() }
        }
        if let e = peek(), e == UInt8(ascii: "e") || e == UInt8(ascii: "E") {
            isDecimal = true
            advance()
            if let sign = peek(), sign == UInt8(ascii: "+") || sign == UInt8(ascii: "-") { advance() }
            guard let digit = peek(), Self.isDigit(digit) else { throw error("an exponent needs digits") }
            while let next = peek(), Self.isDigit(next) { advance() }
        }
        if let next = peek(), Self.isWordStart(next) { throw error("a number runs into a name") }
        let text = String(decoding: bytes[start..<index], as: UTF8.self)
        if !isDecimal {
            guard let value = Int64(text) else { throw error("\(text) does not fit in 64 bits") }
            return .integer(value)
        }
        guard let value = Double(text), value.isFinite else { throw error("\(text) is not a finite number") }
        return .decimal(value)
    }

    /// A string or quoted name; the quote doubled stands for itself.
    private mutating func quoted(_ quote: UInt8, what: String) throws(SQLSyntaxError) -> String {
        let opened = error("a \(what) opened here is never closed")
        advance()
        var content: [UInt8] = []
        while true {
            guard let byte = peek() else { throw opened }
            advance()
            if byte == quote {
                if peek() == quote {
                    content.append(quote)
                    advance()
                    continue
                }
                break
            }
            content.append(byte)
        }
        guard let text = String(validating: content, as: UTF8.self) else { throw opened }
        return text
    }

    private static func isDigit(_ byte: UInt8) -> Bool { byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9") }

    private static func isWordStart(_ byte: UInt8) -> Bool {
        (byte >= UInt8(ascii: "a") && byte <= UInt8(ascii: "z")) || (byte >= UInt8(ascii: "A") && byte <= UInt8(ascii: "Z"))
            || byte == UInt8(ascii: "_")
    }

    private static func isWordPart(_ byte: UInt8) -> Bool { isWordStart(byte) || isDigit(byte) }
}
