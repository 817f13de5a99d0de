import EdgeLogCore

extension ScalarFunction {
    /// The result for evaluated arguments (the compiler checked how many there are).
    func apply(_ arguments: [StreamValue]) -> StreamValue {
        let first = arguments[0]
        switch self {
        case .coalesce: return arguments.first { !$0.isNull } ?? .null
        case .ifnull: return first.isNull ? arguments[1] : first
        case .nullif: return StreamValue.compare(first, arguments[1]) == 0 ? .null : first
        case .abs:
            if case .int(let number) = first { return number == .min ? .double(-Double(number)) : .int(Swift.abs(number)) }
            return first.numeric.map { .double(Swift.abs($0)) } ?? .null
        case .round:
            guard let number = first.numeric else { return .null }
            let places = arguments.count > 1 ? (arguments[1].int ?? 0) : 0
            if case .int = first, places >= 0 { return first }
            let scale = Self.power10(places)
            let rounded = (number * scale).rounded(.toNearestOrAwayFromZero) / scale
            return places <= 0 ? (StreamValue.double(rounded).int.map(StreamValue.int) ?? .double(rounded)) : .double(rounded)
        case .floor: return Self.integral(first, .down)
        case .ceil: return Self.integral(first, .up)
        case .sqrt: return first.numeric.flatMap { $0 >= 0 ? .double($0.squareRoot()) : nil } ?? .null
        case .power:
            guard let base = first.numeric, let exponent = arguments[1].numeric else { return .null }
            return .double(Self.pow(base, exponent))
        case .ln: return first.numeric.flatMap { $0 > 0 ? .double(Self.log($0)) : nil } ?? .null
        case .log10: return first.numeric.flatMap { $0 > 0 ? .double(Self.log($0) / Self.log(10)) : nil } ?? .null
        case .exp: return first.numeric.map { .double(Self.pow(2.718281828459045, $0)) } ?? .null
        case .sign: return first.numeric.map { .int($0 > 0 ? 1 : ($0 < 0 ? -1 : 0)) } ?? .null
        case .greatest, .least:
            var best: StreamValue = .null
            for candidate in arguments where !candidate.isNull {
                if best.isNull { best = candidate; continue }
                guard let order = StreamValue.compare(candidate, best) else { return .null }
                if (self == .greatest && order > 0) || (self == .least && order < 0) { best = candidate }
            }
            return best
        case .lower: return Self.string(first) { .string($0.lowercased()) }
        case .upper: return Self.string(first) { .string($0.uppercased()) }
        case .length: return Self.string(first) { .int(Int64($0.count)) }
        case .trim: return Self.string(first) { .string(String($0.trimmed(leading: true, trailing: true))) }
        case .ltrim: return Self.string(first) { .string(String($0.trimmed(leading: true, trailing: false))) }
        case .rtrim: return Self.string(first) { .string(String($0.trimmed(leading: false, trailing: true))) }
        case .substring:
            guard !first.isNull, let start = arguments[1].int else { return .null }
            let characters = Array(first.text)
            // 1-based like SQL; a negative start counts from the end.
            var from = start > 0 ? Int(start) - 1 : (start < 0 ? Swift.max(0, characters.count + Int(start)) : 0)
            from = Swift.min(from, characters.count)
            var to = characters.count
            if arguments.count > 2 {
                guard let length = arguments[2].int, length >= 0 else { return .null }
                to = Swift.min(characters.count, from + Int(Swift.min(length, Int64(characters.count))))
            }
            return .string(String(characters[from..<to]))
        case .concat:
            var text = ""
            for argument in arguments where !argument.isNull { text += argument.text }
            return .string(text)
        case .replace:
            guard !first.isNull, !arguments[1].isNull, !arguments[2].isNull else { return .null }
            let target = arguments[1].text
            guard !target.isEmpty else { return first }
            return .string(first.text.replacingAll(target, with: arguments[2].text))
        case .instr:
            guard !first.isNull, !arguments[1].isNull else { return .null }
            return .int(first.text.position(of: arguments[1].text).map { Int64($0 + 1) } ?? 0)
        case .lpad, .rpad:
            guard !first.isNull, let length = arguments[1].int, length >= 0, length <= 65_536, !arguments[2].isNull else {
                return .null
            }
            let text = Array(first.text)
            let pad = Array(arguments[2].text)
            guard text.count < length else { return .string(String(text[0..<Int(length)])) }
            guard !pad.isEmpty else { return .string(String(text)) }
            var filler: [Character] = []
            while filler.count < Int(length) - text.count { filler.append(pad[filler.count % pad.count]) }
            return .string(self == .lpad ? String(filler + text) : String(text + filler))
        case .startsWith:
            guard !first.isNull, !arguments[1].isNull else { return .null }
            return .bool(first.text.hasPrefix(arguments[1].text))
        case .endsWith:
            guard !first.isNull, !arguments[1].isNull else { return .null }
            return .bool(first.text.hasSuffix(arguments[1].text))
        case .timestampToString:
            guard let ms = first.int else { return .null }
            let pattern = arguments.count > 1 ? arguments[1].text : TimeFormat.iso8601Pattern
            return .string(TimeFormat.format(ms, pattern: pattern))
        case .stringToTimestamp:
            guard case .string(let text) = first else { return .null }
            let parsed = arguments.count > 1 ? TimeFormat.parse(text, pattern: arguments[1].text) : TimeFormat.parseISO8601(text)
            return parsed.map(StreamValue.int) ?? .null
        case .year, .month, .day, .hour, .minute, .second:
            guard let ms = first.int else { return .null }
            let civil = TimeFormat.CivilTime(ms)
            switch self {
            case .year: return .int(civil.year)
            case .month: return .int(civil.month)
            case .day: return .int(civil.day)
            case .hour: return .int(civil.hour)
            case .minute: return .int(civil.minute)
            default: return .int(civil.second)
            }
        case .timeBucket:
            guard let ms = first.int, let size = arguments[1].int, size > 0 else { return .null }
            return .int(TimeFormat.floor(ms, to: size))
        case .arrayLength:
            guard case .json(let text) = first, text.hasPrefix("[") else { return .null }
            return Array(text.utf8).withUnsafeBytes { JSONPathReader.arrayCount($0) }.map(StreamValue.int) ?? .null
        }
    }

    private static func string(_ value: StreamValue, _ body: (String) -> StreamValue) -> StreamValue {
        value.isNull ? .null : body(value.text)
    }

    private static func integral(_ value: StreamValue, _ rule: FloatingPointRoundingRule) -> StreamValue {
        if case .int = value { return value }
        guard let number = value.numeric else { return .null }
        let rounded = number.rounded(rule)
        return StreamValue.double(rounded).int.map(StreamValue.int) ?? .double(rounded)
    }

    private static func power10(_ places: Int64) -> Double {
        pow(10, Double(Swift.max(-300, Swift.min(300, places))))
    }

    /// `pow` and `log` without Foundation, through the C library the Swift runtime links.
    static func pow(_ base: Double, _ exponent: Double) -> Double { StreamMath.pow(base, exponent) }
    static func log(_ value: Double) -> Double { StreamMath.log(value) }
}

extension String {
    func trimmed(leading: Bool, trailing: Bool) -> Substring {
        var slice = Substring(self)
        while leading, let first = slice.first, first.isWhitespace { slice.removeFirst() }
        while trailing, let last = slice.last, last.isWhitespace { slice.removeLast() }
        return slice
    }

    /// The character position of the first occurrence of `needle`.
    func position(of needle: String) -> Int? {
        let haystack = Array(self)
        let target = Array(needle)
        guard !target.isEmpty else { return 0 }
        guard haystack.count >= target.count else { return nil }
        for start in 0...(haystack.count - target.count) where haystack[start..<(start + target.count)].elementsEqual(target) {
            return start
        }
        return nil
    }

    func replacingAll(_ target: String, with replacement: String) -> String {
        let haystack = Array(self)
        let needle = Array(target)
        var result: [Character] = []
        var index = 0
        while index < haystack.count {
            if index + needle.count <= haystack.count, haystack[index..<(index + needle.count)].elementsEqual(needle) {
                result.append(contentsOf: replacement)
                index += needle.count
            } else {
                result.append(haystack[index])
                index += 1
            }
        }
        return String(result)
    }
}
