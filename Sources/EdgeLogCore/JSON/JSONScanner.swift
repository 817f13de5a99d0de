/// A validating JSON scanner over raw bytes that returns where values are instead of building
/// them, so that a record's JSON value is stored as the exact bytes the client sent (a slice of
/// the request body, no copy) and a syntax error can be reported with its byte offset, line and
/// column. Follows RFC 8259; nesting is limited to `maxDepth`.
package struct JSONScanner {
    package let bytes: UnsafeRawBufferPointer
    package var index: Int
    package let end: Int
    package static let maxDepth = 64

    package init(_ bytes: UnsafeRawBufferPointer, from start: Int = 0, to end: Int? = nil) {
        self.bytes = bytes
        self.index = start
        self.end = end ?? bytes.count
    }

    package var isAtEnd: Bool { index >= end }

    package func peek() -> UInt8? { index < end ? bytes[index] : nil }

    package mutating func skipWhitespace() {
        while index < end {
            switch bytes[index] {
            case 0x20, 0x09, 0x0A, 0x0D: index += 1
            default: return
            }
        }
    }

    package func error(_ message: String, at offset: Int? = nil) -> JSONSyntaxError {
        JSONSyntaxError(bytes: bytes, offset: offset ?? index, message: message)
    }

    package mutating func expect(_ byte: UInt8, _ what: String) throws(JSONSyntaxError) {
        skipWhitespace()
        guard peek() == byte else { throw error("expected \(what)\(found)") }
        index += 1
    }

    package var found: String {
        guard let byte = peek() else { return ", found the end of the input" }
        if byte >= 0x20 && byte < 0x7F { return ", found '\(Character(UnicodeScalar(byte)))'" }
        return ", found byte 0x\(String(byte, radix: 16))"
    }

    /// Scans one value and returns its byte range.
    package mutating func scanValue(depth: Int = 0) throws(JSONSyntaxError) -> Range<Int> {
        skipWhitespace()
        let start = index
        guard let byte = peek() else { throw error("expected a value, found the end of the input") }
        switch byte {
        case UInt8(ascii: "{"):
            guard depth < Self.maxDepth else { throw error("nested deeper than \(Self.maxDepth) levels") }
            index += 1
            skipWhitespace()
            if peek() == UInt8(ascii: "}") {
                index += 1
                return start..<index
            }
            while true {
                skipWhitespace()
                guard peek() == UInt8(ascii: "\"") else { throw error("expected a member name in quotes\(found)") }
                _ = try scanString()
                try expect(UInt8(ascii: ":"), "':' after a member name")
                _ = try scanValue(depth: depth + 1)
                skipWhitespace()
                if peek() == UInt8(ascii: ",") {
                    index += 1
                    continue
                }
                try expect(UInt8(ascii: "}"), "',' or '}' in an object")
                return start..<index
            }
        case UInt8(ascii: "["):
            guard depth < Self.maxDepth else { throw error("nested deeper than \(Self.maxDepth) levels") }
            index += 1
            skipWhitespace()
            if peek() == UInt8(ascii: "]") {
                index += 1
                return start..<index
            }
            while true {
                _ = try scanValue(depth: depth + 1)
                skipWhitespace()
                if peek() == UInt8(ascii: ",") {
                    index += 1
                    continue
                }
                try expect(UInt8(ascii: "]"), "',' or ']' in an array")
                return start..<index
            }
        case UInt8(ascii: "\""):
            return try scanString()
        case UInt8(ascii: "t"):
            try literal("true")
        case UInt8(ascii: "f"):
            try literal("false")
        case UInt8(ascii: "n"):
            try literal("null")
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"):
            try scanNumber()
        default:
            throw error("expected a value\(found)")
        }
        return start..<index
    }

    private mutating func literal(_ word: StaticString) throws(JSONSyntaxError) {
        let start = index
        for expected in UnsafeBufferPointer(start: word.utf8Start, count: word.utf8CodeUnitCount) {
            guard peek() == expected else { throw error("invalid literal, expected \(word)", at: start) }
            index += 1
        }
    }

    private mutating func scanNumber() throws(JSONSyntaxError) {
        if peek() == UInt8(ascii: "-") { index += 1 }
        guard let first = peek(), first >= 0x30, first <= 0x39 else { throw error("expected a digit\(found)") }
        index += 1
        if first != 0x30 { skipDigits() }
        if peek() == UInt8(ascii: ".") {
            index += 1
            guard let digit = peek(), digit >= 0x30, digit <= 0x39 else { throw error("expected a digit after '.'\(found)") }
            skipDigits()
        }
        if peek() == UInt8(ascii: "e") || peek() == UInt8(ascii: "E") {
            index += 1
            if peek() == UInt8(ascii: "+") || peek() == UInt8(ascii: "-") { index += 1 }
            guard let digit = peek(), digit >= 0x30, digit <= 0x39 else { throw error("expected an exponent\(found)") }
            skipDigits()
        }
    }

    private mutating func skipDigits() {
        while let byte = peek(), byte >= 0x30, byte <= 0x39 { index += 1 }
    }

    /// Scans a string including its quotes, checking escapes and that control characters are
    /// escaped. UTF-8 validity is checked when the string is decoded.
    package mutating func scanString() throws(JSONSyntaxError) -> Range<Int> {
        let start = index
        guard peek() == UInt8(ascii: "\"") else { throw error("expected '\"'\(found)") }
        index += 1
        while index < end {
            let byte = bytes[index]
            switch byte {
            case UInt8(ascii: "\""):
                index += 1
                return start..<index
            case UInt8(ascii: "\\"):
                index += 1
                guard let escaped = peek() else { break }
                switch escaped {
                case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"), UInt8(ascii: "b"), UInt8(ascii: "f"),
                    UInt8(ascii: "n"), UInt8(ascii: "r"), UInt8(ascii: "t"):
                    index += 1
                case UInt8(ascii: "u"):
                    index += 1
                    for _ in 0..<4 {
                        guard let hex = peek(), hex.isHexDigit else { throw error("invalid \\u escape") }
                        index += 1
                    }
                default:
                    throw error("invalid escape '\\\(Character(UnicodeScalar(escaped)))'")
                }
            case 0x00..<0x20:
                throw error("unescaped control character 0x\(String(byte, radix: 16)) in a string")
            default:
                index += 1
            }
        }
        throw error("unterminated string", at: start)
    }

    /// The text of a scanned string (range including quotes), escapes decoded; nil when it is
    /// not valid UTF-8.
    package func decodeString(_ range: Range<Int>) -> String? {
        let inner = UnsafeRawBufferPointer(rebasing: bytes[(range.lowerBound + 1)..<(range.upperBound - 1)])
        if !inner.contains(UInt8(ascii: "\\")) {
            return String(validating: inner, as: UTF8.self)
        }
        var scalars = String.UnicodeScalarView()
        var utf8: [UInt8] = []
        func flush() -> Bool {
            guard !utf8.isEmpty else { return true }
            guard let text = String(validating: utf8, as: UTF8.self) else { return false }
            scalars.append(contentsOf: text.unicodeScalars)
            utf8.removeAll()
            return true
        }
        var index = 0
        while index < inner.count {
            let byte = inner[index]
            guard byte == UInt8(ascii: "\\") else {
                utf8.append(byte)
                index += 1
                continue
            }
            guard flush() else { return nil }
            let escaped = inner[index + 1]
            index += 2
            switch escaped {
            case UInt8(ascii: "b"): scalars.append("\u{8}")
            case UInt8(ascii: "f"): scalars.append("\u{C}")
            case UInt8(ascii: "n"): scalars.append("\n")
            case UInt8(ascii: "r"): scalars.append("\r")
            case UInt8(ascii: "t"): scalars.append("\t")
            case UInt8(ascii: "u"):
                var code = Self.hexValue(inner, index)
                index += 4
                if (0xD800..<0xDC00).contains(code), index + 6 <= inner.count, inner[index] == UInt8(ascii: "\\"),
                    inner[index + 1] == UInt8(ascii: "u")
                {
                    let low = Self.hexValue(inner, index + 2)
                    if (0xDC00..<0xE000).contains(low) {
                        code = 0x10000 + ((code - 0xD800) << 10) + (low - 0xDC00)
                        index += 6
                    }
                }
                guard let scalar = Unicode.Scalar(code) else { return nil }
                scalars.append(scalar)
            default: scalars.append(Unicode.Scalar(escaped))
            }
        }
        guard flush() else { return nil }
        return String(scalars)
    }

    private static func hexValue(_ bytes: UnsafeRawBufferPointer, _ index: Int) -> UInt32 {
        var value: UInt32 = 0
        for offset in 0..<4 {
            let byte = bytes[index + offset]
            let digit: UInt8 =
                byte <= UInt8(ascii: "9") ? byte - UInt8(ascii: "0") : (byte | 0x20) - UInt8(ascii: "a") + 10
            value = value << 4 | UInt32(digit)
        }
        return value
    }
}

extension UInt8 {
    package var isHexDigit: Bool {
        (0x30...0x39).contains(self) || (0x41...0x46).contains(self) || (0x61...0x66).contains(self)
    }
}

/// A JSON syntax error with where it is: byte offset, line and column (1-based).
package struct JSONSyntaxError: Error, Sendable, CustomStringConvertible {
    package var offset: Int
    package var line: Int
    package var column: Int
    package var message: String

    package init(bytes: UnsafeRawBufferPointer, offset: Int, message: String) {
        self.offset = offset
        self.message = message
        var line = 1
        var lineStart = 0
        for index in 0..<min(offset, bytes.count) where bytes[index] == 0x0A {
            line += 1
            lineStart = index + 1
        }
        self.line = line
        self.column = offset - lineStart + 1
    }

    package var description: String { "\(message) at line \(line), column \(column) (byte \(offset))" }
}
