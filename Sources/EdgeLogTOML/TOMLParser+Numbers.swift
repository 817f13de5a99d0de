/// Integers, floats and date-times: the values written without quotes.
extension TOMLParser {
    static func isDigit(_ byte: UInt8?) -> Bool {
        guard let byte else { return false }
        return byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9")
    }

    mutating func parseNumberOrDateTime() throws(TOMLParseError) -> TOMLValue.Kind {
        if Self.isDigit(peek()) && Self.isDigit(peek(1)) {
            if peek(2) == UInt8(ascii: ":") { return .dateTime(try parseDateTime(startingWithDate: false)) }
            if Self.isDigit(peek(2)) && Self.isDigit(peek(3)) && peek(4) == UInt8(ascii: "-") {
                return .dateTime(try parseDateTime(startingWithDate: true))
            }
        }
        let start = index
        while let byte = peek(), Self.isBareKeyByte(byte) || byte == UInt8(ascii: "+") || byte == UInt8(ascii: ".") { index += 1 }
        let token = bytes[start..<index]
        let text = String(decoding: token, as: UTF8.self)
        guard !token.isEmpty else { throw error("expected a value, found \(found)") }
        let (tokenLine, tokenColumn) = (line, start - lineStart + 1)
        return try Self.number(token, text: text) { TOMLParseError(line: tokenLine, column: tokenColumn, message: $0) }
    }

    /// TOML's integer and float grammar: underscores only between digits, no leading zeros,
    /// no sign on hexadecimal, octal or binary; a value that does not fit 64 bits is an error.
    static func number(_ token: ArraySlice<UInt8>, text: String, error: (String) -> TOMLParseError) throws(TOMLParseError)
        -> TOMLValue.Kind
    {
        let invalid = error(
            "'\(text)' is not a value: strings need quotes; numbers, true, false, arrays [...], tables {...} and dates are written bare")
        var digits = token
        let negative = digits.first == UInt8(ascii: "-")
        let signed = negative || digits.first == UInt8(ascii: "+")
        if signed { digits = digits.dropFirst() }
        if digits.elementsEqual("inf".utf8) { return .float(negative ? -.infinity : .infinity) }
        if digits.elementsEqual("nan".utf8) { return .float(.nan) }

        if digits.count > 2, digits.first == UInt8(ascii: "0") {
            let radix: Int? =
                switch digits[digits.startIndex + 1] {
                case UInt8(ascii: "x"): 16
                case UInt8(ascii: "o"): 8
                case UInt8(ascii: "b"): 2
                default: nil
                }
            if let radix {
                guard !signed else { throw error("'\(text)': a sign is not allowed on hexadecimal, octal or binary integers") }
                let body = digits.dropFirst(2)
                guard scanDigits(body, radix: radix) == body.endIndex else { throw invalid }
                guard let value = Int64(String(decoding: body.lazy.filter { $0 != UInt8(ascii: "_") }, as: UTF8.self), radix: radix)
                else { throw error("'\(text)' does not fit in a 64-bit integer") }
                return .integer(value)
            }
        }

        guard let integerEnd = scanDigits(digits, radix: 10) else { throw invalid }
        if integerEnd - digits.startIndex > 1 && digits.first == UInt8(ascii: "0") {
            throw error("'\(text)': leading zeros are not allowed")
        }
        var end = integerEnd
        var isFloat = false
        if end < digits.endIndex, digits[end] == UInt8(ascii: ".") {
            guard let fractionEnd = scanDigits(digits[(end + 1)...], radix: 10) else { throw invalid }
            end = fractionEnd
            isFloat = true
        }
        if end < digits.endIndex, digits[end] == UInt8(ascii: "e") || digits[end] == UInt8(ascii: "E") {
            var exponent = digits[(end + 1)...]
            if let sign = exponent.first, sign == UInt8(ascii: "+") || sign == UInt8(ascii: "-") { exponent = exponent.dropFirst() }
            guard let exponentEnd = scanDigits(exponent, radix: 10) else { throw invalid }
            end = exponentEnd
            isFloat = true
        }
        guard end == digits.endIndex else { throw invalid }
        let plain = String(decoding: token.lazy.filter { $0 != UInt8(ascii: "_") }, as: UTF8.self)
        if isFloat {
            guard let value = Double(plain), value.isFinite else { throw error("'\(text)' is out of the range of a 64-bit float") }
            return .float(value)
        }
        guard let value = Int64(plain) else { throw error("'\(text)' does not fit in a 64-bit integer") }
        return .integer(value)
    }

    /// The end of `digit (_? digit)*` at the start of `bytes`, or nil if there is none or an
    /// underscore is not between two digits.
    static func scanDigits(_ bytes: ArraySlice<UInt8>, radix: Int) -> Int? {
        var index = bytes.startIndex
        var last: UInt8? = nil
        while index < bytes.endIndex {
            let byte = bytes[index]
            if byte == UInt8(ascii: "_") {
                guard last != nil && last != UInt8(ascii: "_") else { return nil }
            } else {
                guard let value = hexValue(byte), Int(value) < radix else { break }
            }
            last = byte
            index += 1
        }
        guard let last, last != UInt8(ascii: "_") else { return nil }
        return index
    }

    // MARK: Date-times

    /// `1979-05-27`, `1979-05-27T07:32:00.999`, `1979-05-27 07:32:00Z`, `07:32:00-07:00`
    /// forms checked field by field (a 30 February is an error), kept as written.
    mutating func parseDateTime(startingWithDate: Bool) throws(TOMLParseError) -> String {
        let start = index
        if startingWithDate {
            let year = try field(4, "year")
            try expect(UInt8(ascii: "-"), "'-' in the date")
            let month = try field(2, "month", in: 1...12)
            try expect(UInt8(ascii: "-"), "'-' in the date")
            let leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0)
            let days = [31, leap ? 29 : 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31][month - 1]
            _ = try field(2, "day", in: 1...days)
            let separator = peek()
            let spaceThenTime =
                separator == UInt8(ascii: " ") && Self.isDigit(peek(1)) && Self.isDigit(peek(2)) && peek(3) == UInt8(ascii: ":")
            guard separator == UInt8(ascii: "T") || separator == UInt8(ascii: "t") || spaceThenTime else {
                return String(decoding: bytes[start..<index], as: UTF8.self)
            }
            index += 1
        }
        _ = try field(2, "hour", in: 0...23)
        try expect(UInt8(ascii: ":"), "':' in the time")
        _ = try field(2, "minute", in: 0...59)
        try expect(UInt8(ascii: ":"), "':' and seconds in the time")
        _ = try field(2, "second", in: 0...60)
        if peek() == UInt8(ascii: ".") {
            index += 1
            guard Self.isDigit(peek()) else { throw error("expected digits after the '.' of the seconds, found \(found)") }
            while Self.isDigit(peek()) { index += 1 }
        }
        if startingWithDate {
            switch peek() {
            case UInt8(ascii: "Z"), UInt8(ascii: "z"):
                index += 1
            case UInt8(ascii: "+"), UInt8(ascii: "-"):
                index += 1
                _ = try field(2, "offset hour", in: 0...23)
                try expect(UInt8(ascii: ":"), "':' in the offset")
                _ = try field(2, "offset minute", in: 0...59)
            default:
                break
            }
        }
        return String(decoding: bytes[start..<index], as: UTF8.self)
    }

    private mutating func field(_ width: Int, _ name: String, in range: ClosedRange<Int>? = nil) throws(TOMLParseError) -> Int {
        var value = 0
        for offset in 0..<width {
            guard let byte = peek(offset), Self.isDigit(byte) else {
                index += offset
                throw error("expected \(width) digits for the \(name), found \(found)")
            }
            value = value * 10 + Int(byte - UInt8(ascii: "0"))
        }
        if let range, !range.contains(value) {
            throw error("\(value) is not a valid \(name) (\(range.lowerBound)...\(range.upperBound))")
        }
        index += width
        return value
    }
}
