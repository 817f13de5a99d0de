/// Basic and literal strings, single- and multi-line, with TOML's escapes.
extension TOMLParser {
    private static let quote = UInt8(ascii: "\""), apostrophe = UInt8(ascii: "'"), backslash = UInt8(ascii: "\\")

    /// At a `"` or `'`: whichever of the four string forms starts here.
    mutating func parseString() throws(TOMLParseError) -> String {
        let delimiter = bytes[index]
        let multiline = peek(1) == delimiter && peek(2) == delimiter
        var text: [UInt8] = []
        if multiline {
            index += 3
            _ = try consumeNewline()  // a newline right after the opening delimiter is not part of the string
        } else {
            index += 1
        }
        while true {
            guard let byte = peek() else {
                throw error("the string is not closed: expected \(multiline ? "'\(delimiterText(delimiter, 3))'" : "'\(delimiterText(delimiter, 1))'") before the end of the file")
            }
            switch byte {
            case delimiter where !multiline:
                index += 1
                return String(decoding: text, as: UTF8.self)
            case delimiter:
                var run = 1
                while peek(run) == delimiter { run += 1 }
                if run >= 3 {
                    // Up to two quotes may end the content right before the closing three.
                    guard run <= 5 else { throw error("\(run) quotes in a row cannot end a multi-line string") }
                    text.append(contentsOf: repeatElement(delimiter, count: run - 3))
                    index += run
                    return String(decoding: text, as: UTF8.self)
                }
                text.append(contentsOf: repeatElement(delimiter, count: run))
                index += run
            case Self.backslash where delimiter == Self.quote:
                if multiline, try skipLineEndingBackslash() { continue }
                try parseEscape(into: &text)
            case UInt8(ascii: "\n"), UInt8(ascii: "\r"):
                guard multiline else { throw error("the string is not closed on its line (a newline needs \"\"\" strings)") }
                _ = try consumeNewline()
                text.append(UInt8(ascii: "\n"))
            default:
                if isControl(byte) { throw error("control character \(found) in a string (write it as an escape)") }
                text.append(byte)
                index += 1
            }
        }
    }

    private func delimiterText(_ delimiter: UInt8, _ count: Int) -> String {
        String(repeating: Character(Unicode.Scalar(delimiter)), count: count)
    }

    /// In a `"""` string, a backslash that ends its line joins the next non-blank text to it.
    private mutating func skipLineEndingBackslash() throws(TOMLParseError) -> Bool {
        var offset = 1
        while peek(offset) == UInt8(ascii: " ") || peek(offset) == UInt8(ascii: "\t") { offset += 1 }
        guard peek(offset) == UInt8(ascii: "\n") || (peek(offset) == UInt8(ascii: "\r") && peek(offset + 1) == UInt8(ascii: "\n"))
        else { return false }
        index += offset
        while true {
            skipBlanks()
            guard try consumeNewline() else { return true }
        }
    }

    /// At a backslash; errors point at it.
    private mutating func parseEscape(into text: inout [UInt8]) throws(TOMLParseError) {
        guard let letter = peek(1) else { throw error("the string is not closed: an escape at the end of the file") }
        let simple: UInt8? =
            switch letter {
            case UInt8(ascii: "b"): 0x08
            case UInt8(ascii: "t"): 0x09
            case UInt8(ascii: "n"): 0x0A
            case UInt8(ascii: "f"): 0x0C
            case UInt8(ascii: "r"): 0x0D
            case Self.quote: Self.quote
            case Self.backslash: Self.backslash
            default: nil
            }
        if let simple {
            text.append(simple)
            index += 2
            return
        }
        let digits: Int
        switch letter {
        case UInt8(ascii: "u"): digits = 4
        case UInt8(ascii: "U"): digits = 8
        default:
            throw error("unknown escape \\\(Character(Unicode.Scalar(letter))) (TOML has \\b \\t \\n \\f \\r \\\" \\\\ \\uXXXX \\UXXXXXXXX)")
        }
        var code: UInt32 = 0
        for offset in 2...(digits + 1) {
            guard let byte = peek(offset), let digit = Self.hexValue(byte) else {
                throw error("\\\(Character(Unicode.Scalar(letter))) needs \(digits) hexadecimal digits")
            }
            code = code << 4 | UInt32(digit)
        }
        guard let scalar = Unicode.Scalar(code) else {
            throw error("\\\(Character(Unicode.Scalar(letter))) escape \(String(code, radix: 16, uppercase: true)) is not a Unicode scalar value")
        }
        UTF8.encode(scalar) { text.append($0) }
        index += 2 + digits
    }

    static func hexValue(_ byte: UInt8) -> UInt8? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): byte - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): byte - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): byte - UInt8(ascii: "A") + 10
        default: nil
        }
    }
}
