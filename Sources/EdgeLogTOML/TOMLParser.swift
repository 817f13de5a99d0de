/// A TOML 1.0 parser written for input nobody has checked: every malformed document ends in a
/// `TOMLParseError` with its line and column, never in a trap, and nesting is bounded so that
/// no input can exhaust the stack. (The bundled C++ parser the project used before aborted on
/// inputs such as `[[[x`, and in a release build its assertions become undefined behaviour.)
public struct TOMLParser {
    /// Arrays and inline tables nested deeper than this are refused: a configuration file has
    /// no use for them, and a recursive parser must not follow an input down the stack.
    public static let maxNesting = 64

    var bytes: [UInt8]
    var index = 0
    var line = 1
    var lineStart = 0
    var nesting = 0
    let root = TOMLTable(origin: .header, line: 1)
    /// The table that `key = value` lines go into: the last header's.
    var current: TOMLTable

    public static func parse(_ text: String) throws(TOMLParseError) -> TOMLTable {
        var parser = TOMLParser(bytes: Array(text.utf8))
        return try parser.parseDocument()
    }

    /// Bytes that are not valid UTF-8 are refused with their place.
    public static func parse(bytes: some Collection<UInt8>) throws(TOMLParseError) -> TOMLTable {
        var parser = TOMLParser(bytes: Array(bytes))
        try parser.checkUTF8()
        return try parser.parseDocument()
    }

    init(bytes: [UInt8]) {
        self.bytes = bytes
        self.current = root
    }

    mutating func parseDocument() throws(TOMLParseError) -> TOMLTable {
        if bytes.starts(with: [0xEF, 0xBB, 0xBF]) { index = 3 }  // a byte order mark
        while true {
            skipBlanks()
            guard let byte = peek() else { return root }
            switch byte {
            case UInt8(ascii: "#"), UInt8(ascii: "\n"), UInt8(ascii: "\r"): break
            case UInt8(ascii: "["): try parseHeader()
            default: try parseKeyValue(into: current)
            }
            try endOfLine()
        }
    }

    // MARK: Lines

    func peek(_ offset: Int = 0) -> UInt8? {
        index + offset < bytes.count ? bytes[index + offset] : nil
    }

    var column: Int { index - lineStart + 1 }

    func error(_ message: String) -> TOMLParseError {
        TOMLParseError(line: line, column: column, message: message)
    }

    /// What is at the current position, for messages: "found 'x'", "found the end of the line".
    var found: String {
        guard let byte = peek() else { return "the end of the file" }
        switch byte {
        case UInt8(ascii: "\n"), UInt8(ascii: "\r"): return "the end of the line"
        case 0x21...0x7E: return "'\(Character(Unicode.Scalar(byte)))'"
        default: return "byte 0x\(String(byte, radix: 16, uppercase: true))"
        }
    }

    /// Spaces and tabs.
    mutating func skipBlanks() {
        while let byte = peek(), byte == UInt8(ascii: " ") || byte == UInt8(ascii: "\t") { index += 1 }
    }

    /// Consumes a newline (LF or CRLF) if one is here.
    mutating func consumeNewline() throws(TOMLParseError) -> Bool {
        switch peek() {
        case UInt8(ascii: "\n"):
            index += 1
        case UInt8(ascii: "\r"):
            guard peek(1) == UInt8(ascii: "\n") else { throw error("a carriage return must be followed by a line feed") }
            index += 2
        default:
            return false
        }
        line += 1
        lineStart = index
        return true
    }

    /// A comment from `#` to the end of the line, if one is here.
    mutating func skipComment() throws(TOMLParseError) {
        guard peek() == UInt8(ascii: "#") else { return }
        index += 1
        while let byte = peek(), byte != UInt8(ascii: "\n") {
            if byte == UInt8(ascii: "\r") && peek(1) == UInt8(ascii: "\n") { break }
            if isControl(byte) { throw error("control character \(found) in a comment") }
            index += 1
        }
    }

    /// After a header or a key/value pair: blanks, an optional comment, then a newline or the end.
    mutating func endOfLine() throws(TOMLParseError) {
        skipBlanks()
        try skipComment()
        guard peek() != nil else { return }
        guard try consumeNewline() else { throw error("expected the end of the line, found \(found)") }
    }

    /// Blanks, comments and newlines, as allowed between the elements of an array.
    mutating func skipBlanksCommentsAndNewlines() throws(TOMLParseError) {
        while true {
            skipBlanks()
            try skipComment()
            guard try consumeNewline() else { return }
        }
    }

    /// Control characters other than tab are not allowed in comments or strings.
    func isControl(_ byte: UInt8) -> Bool { (byte < 0x20 && byte != 0x09) || byte == 0x7F }

    mutating func expect(_ byte: UInt8, _ what: String) throws(TOMLParseError) {
        guard peek() == byte else { throw error("expected \(what), found \(found)") }
        index += 1
    }

    /// Refuses bytes that are not UTF-8, naming the line they are on.
    mutating func checkUTF8() throws(TOMLParseError) {
        var iterator = bytes.makeIterator()
        var decoder = UTF8()
        var offset = 0
        while true {
            switch decoder.decode(&iterator) {
            case .scalarValue(let scalar):
                if scalar == "\n" {
                    line += 1
                    lineStart = offset + 1
                }
                offset += UTF8.width(scalar)
            case .emptyInput:
                line = 1
                lineStart = 0
                return
            case .error:
                index = offset
                throw error("the file is not valid UTF-8")
            }
        }
    }
}
