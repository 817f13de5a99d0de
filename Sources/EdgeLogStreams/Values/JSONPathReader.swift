import EdgeLogCore

/// Reads one path out of a record's JSON bytes without building the whole document: members
/// that are not on the path are only scanned over. A value that is not JSON, or a path that
/// leads nowhere, reads as null (SQL's "unknown"), never as an error that stops a processor.
enum JSONPathReader {
    /// The value at `path` in `bytes` (empty path: the whole value).
    static func value(in bytes: UnsafeRawBufferPointer, at path: [SQLExpression.PathStep]) -> StreamValue {
        var scanner = JSONScanner(bytes)
        do {
            var range = try scanner.scanValue()
            for step in path {
                guard let next = try child(of: range, step: step, in: bytes) else { return .null }
                range = next
            }
            return try scalar(range, in: bytes)
        } catch {
            return .null
        }
    }

    /// The whole of `bytes` as a value: JSON when it parses as JSON, else its text.
    static func document(_ bytes: UnsafeRawBufferPointer) -> StreamValue {
        var scanner = JSONScanner(bytes)
        if let range = try? scanner.scanValue() {
            scanner.skipWhitespace()
            if scanner.isAtEnd, let value = try? scalar(range, in: bytes) { return value }
        }
        return String(validating: bytes, as: UTF8.self).map(StreamValue.string) ?? .null
    }

    private static func child(
        of range: Range<Int>, step: SQLExpression.PathStep, in bytes: UnsafeRawBufferPointer
    ) throws(JSONSyntaxError) -> Range<Int>? {
        var scanner = JSONScanner(bytes, from: range.lowerBound, to: range.upperBound)
        switch (step, bytes[range.lowerBound]) {
        case (.field(let name), UInt8(ascii: "{")):
            scanner.index += 1
            scanner.skipWhitespace()
            if scanner.peek() == UInt8(ascii: "}") { return nil }
            while true {
                scanner.skipWhitespace()
                let nameRange = try scanner.scanString()
                try scanner.expect(UInt8(ascii: ":"), "':'")
                let valueRange = try scanner.scanValue(depth: 1)
                if matches(nameRange, name, in: bytes, scanner) { return valueRange }
                scanner.skipWhitespace()
                guard scanner.peek() == UInt8(ascii: ",") else { return nil }
                scanner.index += 1
            }
        case (.index(let wanted), UInt8(ascii: "[")):
            scanner.index += 1
            scanner.skipWhitespace()
            if scanner.peek() == UInt8(ascii: "]") { return nil }
            var index = 0
            while true {
                let valueRange = try scanner.scanValue(depth: 1)
                if index == wanted { return valueRange }
                index += 1
                scanner.skipWhitespace()
                guard scanner.peek() == UInt8(ascii: ",") else { return nil }
                scanner.index += 1
            }
        default:
            return nil
        }
    }

    /// Whether a member name (range with quotes) is `name`; compared as bytes unless escaped.
    private static func matches(
        _ range: Range<Int>, _ name: String, in bytes: UnsafeRawBufferPointer, _ scanner: JSONScanner
    ) -> Bool {
        let inner = UnsafeRawBufferPointer(rebasing: bytes[(range.lowerBound + 1)..<(range.upperBound - 1)])
        if !inner.contains(UInt8(ascii: "\\")) {
            return inner.elementsEqual(name.utf8)
        }
        return scanner.decodeString(range) == name
    }

    static func scalar(_ range: Range<Int>, in bytes: UnsafeRawBufferPointer) throws(JSONSyntaxError) -> StreamValue {
        let slice = UnsafeRawBufferPointer(rebasing: bytes[range])
        switch slice.first {
        case UInt8(ascii: "\""):
            return JSONScanner(bytes).decodeString(range).map(StreamValue.string) ?? .null
        case UInt8(ascii: "t"): return .bool(true)
        case UInt8(ascii: "f"): return .bool(false)
        case UInt8(ascii: "n"): return .null
        case UInt8(ascii: "{"), UInt8(ascii: "["):
            return .json(String(decoding: slice, as: UTF8.self))
        default:
            let text = String(decoding: slice, as: UTF8.self)
            if !slice.contains(where: { $0 == UInt8(ascii: ".") || $0 == UInt8(ascii: "e") || $0 == UInt8(ascii: "E") }),
                let integer = Int64(text)
            {
                return .int(integer)
            }
            return Double(text).map(StreamValue.double) ?? .null
        }
    }
}

extension JSONPathReader {
    /// How many elements the JSON array in `bytes` has; nil when it is not an array.
    static func arrayCount(_ bytes: UnsafeRawBufferPointer) -> Int64? {
        var scanner = JSONScanner(bytes)
        scanner.skipWhitespace()
        guard scanner.peek() == UInt8(ascii: "[") else { return nil }
        scanner.index += 1
        scanner.skipWhitespace()
        if scanner.peek() == UInt8(ascii: "]") { return 0 }
        var count: Int64 = 0
        while true {
            guard (try? scanner.scanValue(depth: 1)) != nil else { return nil }
            count += 1
            scanner.skipWhitespace()
            guard scanner.peek() == UInt8(ascii: ",") else { return scanner.peek() == UInt8(ascii: "]") ? count : nil }
            scanner.index += 1
        }
    }
}

extension JSONPathReader {
    /// The members of the JSON object in `bytes`, in order; empty when it is not an object.
    static func members(_ bytes: UnsafeRawBufferPointer) -> [(name: String, value: StreamValue)] {
        var scanner = JSONScanner(bytes)
        scanner.skipWhitespace()
        guard scanner.peek() == UInt8(ascii: "{") else { return [] }
        scanner.index += 1
        var members: [(name: String, value: StreamValue)] = []
        do {
            scanner.skipWhitespace()
            if scanner.peek() == UInt8(ascii: "}") { return [] }
            while true {
                scanner.skipWhitespace()
                let nameRange = try scanner.scanString()
                try scanner.expect(UInt8(ascii: ":"), "':'")
                let valueRange = try scanner.scanValue(depth: 1)
                guard let name = scanner.decodeString(nameRange) else { return [] }
                members.append((name, try scalar(valueRange, in: bytes)))
                scanner.skipWhitespace()
                guard scanner.peek() == UInt8(ascii: ",") else { break }
                scanner.index += 1
            }
        } catch {
            return []
        }
        return members
    }
}
