/// Times are milliseconds since the epoch, in UTC. Formatting and parsing are done here by
/// hand (days-from-civil arithmetic) rather than with a date formatter: they run per record,
/// must give the same answer on every box whatever its locale or time zone, and need only the
/// patterns below.
///
/// Pattern letters (Java's, as ksqlDB uses them): yyyy, MM, dd, HH, mm, ss, SSS, X (Z for UTC,
/// or +hh:mm when parsing); text in single quotes is literal; other characters stand for
/// themselves.
enum TimeFormat {
    static let iso8601Pattern = "yyyy-MM-dd'T'HH:mm:ss.SSSX"

    struct CivilTime {
        var year: Int64, month: Int64, day: Int64, hour: Int64, minute: Int64, second: Int64, millisecond: Int64

        init(_ ms: Int64) {
            let days = ms >= 0 ? ms / 86_400_000 : (ms - 86_399_999) / 86_400_000
            var rest = ms - days * 86_400_000
            hour = rest / 3_600_000
            rest %= 3_600_000
            minute = rest / 60_000
            rest %= 60_000
            second = rest / 1000
            millisecond = rest % 1000
            // Howard Hinnant's civil_from_days.
            let z = days + 719_468
            let era = (z >= 0 ? z : z - 146_096) / 146_097
            let doe = z - era * 146_097
            let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365
            let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
            let mp = (5 * doy + 2) / 153
            day = doy - (153 * mp + 2) / 5 + 1
            month = mp < 10 ? mp + 3 : mp - 9
            year = yoe + era * 400 + (month <= 2 ? 1 : 0)
        }

        init(year: Int64, month: Int64, day: Int64, hour: Int64, minute: Int64, second: Int64, millisecond: Int64) {
            (self.year, self.month, self.day) = (year, month, day)
            (self.hour, self.minute, self.second, self.millisecond) = (hour, minute, second, millisecond)
        }

        /// Hinnant's days_from_civil.
        var milliseconds: Int64 {
            let y = month <= 2 ? year - 1 : year
            let era = (y >= 0 ? y : y - 399) / 400
            let yoe = y - era * 400
            let doy = (153 * (month > 2 ? month - 3 : month + 9) + 2) / 5 + day - 1
            let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
            let days = era * 146_097 + doe - 719_468
            return ((days * 24 + hour) * 60 + minute) * 60_000 + second * 1000 + millisecond
        }
    }

    static func floor(_ ms: Int64, to size: Int64) -> Int64 {
        let remainder = ms % size
        return remainder < 0 ? ms - remainder - size : ms - remainder
    }

    /// The pattern split into fields and literal text.
    private enum Piece { case field(Character, Int), literal(String) }

    private static func pieces(_ pattern: String) -> [Piece] {
        var pieces: [Piece] = []
        let characters = Array(pattern)
        var index = 0
        while index < characters.count {
            let character = characters[index]
            if character == "'" {
                var literal = ""
                index += 1
                while index < characters.count, characters[index] != "'" {
                    literal.append(characters[index])
                    index += 1
                }
                index += 1
                pieces.append(.literal(literal.isEmpty ? "'" : literal))
            } else if "yMdHmsSX".contains(character) {
                var run = 1
                while index + run < characters.count, characters[index + run] == character { run += 1 }
                pieces.append(.field(character, run))
                index += run
            } else {
                pieces.append(.literal(String(character)))
                index += 1
            }
        }
        return pieces
    }

    static func format(_ ms: Int64, pattern: String) -> String {
        let civil = CivilTime(ms)
        var text = ""
        for piece in pieces(pattern) {
            switch piece {
            case .literal(let literal): text += literal
            case .field(let letter, let width):
                let value: Int64
                switch letter {
                case "y": value = civil.year
                case "M": value = civil.month
                case "d": value = civil.day
                case "H": value = civil.hour
                case "m": value = civil.minute
                case "s": value = civil.second
                case "S": value = width >= 3 ? civil.millisecond : civil.millisecond / (width == 2 ? 10 : 100)
                default:
                    text += "Z"
                    continue
                }
                let digits = String(value)
                text += String(repeating: "0", count: max(0, width - digits.count)) + digits
            }
        }
        return text
    }

    /// Reads `text` by `pattern`; nil when it does not fit.
    static func parse(_ text: String, pattern: String) -> Int64? {
        let bytes = Array(text.utf8)
        var index = 0
        var fields: [Character: Int64] = ["y": 1970, "M": 1, "d": 1, "H": 0, "m": 0, "s": 0, "S": 0]
        var offsetMs: Int64 = 0
        for piece in pieces(pattern) {
            switch piece {
            case .literal(let literal):
                for byte in literal.utf8 {
                    guard index < bytes.count, bytes[index] == byte else { return nil }
                    index += 1
                }
            case .field("X", _):
                guard let (offset, used) = zoneOffset(bytes, index) else { return nil }
                offsetMs = offset
                index += used
            case .field(let letter, let width):
                var value: Int64 = 0
                var used = 0
                // Fixed width, except a year of 4 or more and milliseconds, which take every digit.
                let greedy = (letter == "y" && width >= 4) || letter == "S"
                while index < bytes.count, bytes[index] >= 0x30, bytes[index] <= 0x39, greedy || used < width, used < 9 {
                    value = value * 10 + Int64(bytes[index] - 0x30)
                    index += 1
                    used += 1
                }
                guard used > 0 else { return nil }
                if letter == "S" { value = used >= 3 ? value / Self.power10(used - 3) : value * Self.power10(3 - used) }
                fields[letter] = value
            }
        }
        guard index == bytes.count else { return nil }
        return civil(fields).map { $0 - offsetMs }
    }

    /// ISO 8601 as devices send it: `2026-12-07T10:15:30Z`, with or without fractions or a zone
    /// (no zone: UTC), a space instead of the T, or a bare date.
    static func parseISO8601(_ text: String) -> Int64? {
        let bytes = Array(text.utf8)
        var index = 0
        func number(_ width: Int) -> Int64? {
            guard index + width <= bytes.count else { return nil }
            var value: Int64 = 0
            for byte in bytes[index..<(index + width)] {
                guard byte >= 0x30, byte <= 0x39 else { return nil }
                value = value * 10 + Int64(byte - 0x30)
            }
            index += width
            return value
        }
        func expect(_ byte: UInt8) -> Bool {
            guard index < bytes.count, bytes[index] == byte else { return false }
            index += 1
            return true
        }
        guard let year = number(4), expect(UInt8(ascii: "-")), let month = number(2), expect(UInt8(ascii: "-")),
            let day = number(2)
        else { return nil }
        var fields: [Character: Int64] = ["y": year, "M": month, "d": day, "H": 0, "m": 0, "s": 0, "S": 0]
        var offsetMs: Int64 = 0
        if index < bytes.count {
            guard expect(UInt8(ascii: "T")) || expect(UInt8(ascii: "t")) || expect(UInt8(ascii: " ")) else { return nil }
            guard let hour = number(2), expect(UInt8(ascii: ":")), let minute = number(2) else { return nil }
            fields["H"] = hour
            fields["m"] = minute
            if expect(UInt8(ascii: ":")) {
                guard let second = number(2) else { return nil }
                fields["s"] = second
                if expect(UInt8(ascii: ".")) || expect(UInt8(ascii: ",")) {
                    var digits = 0
                    var fraction: Int64 = 0
                    while index < bytes.count, bytes[index] >= 0x30, bytes[index] <= 0x39 {
                        if digits < 3 { fraction = fraction * 10 + Int64(bytes[index] - 0x30) }
                        digits += 1
                        index += 1
                    }
                    guard digits > 0 else { return nil }
                    fields["S"] = fraction * Self.power10(max(0, 3 - digits))
                }
            }
            if index < bytes.count {
                guard let (offset, used) = zoneOffset(bytes, index), index + used == bytes.count else { return nil }
                offsetMs = offset
            }
        }
        return civil(fields).map { $0 - offsetMs }
    }

    /// `Z`, `+hh:mm`, `+hhmm` or `+hh`: the offset in milliseconds and the bytes it took.
    private static func zoneOffset(_ bytes: [UInt8], _ start: Int) -> (Int64, Int)? {
        guard start < bytes.count else { return nil }
        if bytes[start] == UInt8(ascii: "Z") || bytes[start] == UInt8(ascii: "z") { return (0, 1) }
        guard bytes[start] == UInt8(ascii: "+") || bytes[start] == UInt8(ascii: "-") else { return nil }
        let sign: Int64 = bytes[start] == UInt8(ascii: "-") ? -1 : 1
        var digits: [Int64] = []
        var index = start + 1
        while index < bytes.count, digits.count < 4 {
            if bytes[index] == UInt8(ascii: ":") && digits.count == 2 {
                index += 1
                continue
            }
            guard bytes[index] >= 0x30, bytes[index] <= 0x39 else { break }
            digits.append(Int64(bytes[index] - 0x30))
            index += 1
        }
        guard digits.count == 2 || digits.count == 4 else { return nil }
        let hours = digits[0] * 10 + digits[1]
        let minutes = digits.count == 4 ? digits[2] * 10 + digits[3] : 0
        guard hours < 24, minutes < 60 else { return nil }
        return (sign * (hours * 3_600_000 + minutes * 60_000), index - start)
    }

    private static func civil(_ fields: [Character: Int64]) -> Int64? {
        let civil = CivilTime(
            year: fields["y"]!, month: fields["M"]!, day: fields["d"]!, hour: fields["H"]!, minute: fields["m"]!,
            second: fields["s"]!, millisecond: fields["S"]!)
        guard (1...12).contains(civil.month), (1...31).contains(civil.day), civil.hour < 24, civil.minute < 60,
            civil.second < 61, civil.year < 100_000
        else { return nil }
        // A day past the month's end (Feb 30) is refused: it would silently become March.
        guard CivilTime(civil.milliseconds).day == civil.day else { return nil }
        return civil.milliseconds
    }

    private static func power10(_ exponent: Int) -> Int64 {
        var value: Int64 = 1
        for _ in 0..<exponent { value *= 10 }
        return value
    }
}
