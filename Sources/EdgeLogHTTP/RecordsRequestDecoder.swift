public import EdgeLogStorage
import Foundation
public import NIOCore
public import EdgeLogCore

/// Turns the body of `POST /v1/topics/{topic}/records` into records.
///
/// Body formats, by Content-Type:
/// - `application/json` (also Confluent's `application/vnd.kafka.json.v2+json`):
///   `{"records": [R, …]}`, `[R, …]` or a single `R`, where R is
///   `{"key": …, "value": …, "headers": {"name": "text" | null}, "partition": n, "timestamp": ms}`.
///   `value` is any JSON and is stored as the exact JSON text sent. A string `key` is stored as
///   the string's UTF-8 (Kafka keys are usually plain text); any other key as its JSON text.
///   `key_base64` / `value_base64` carry binary. Missing value = null value.
/// - `application/vnd.kafka.binary.v2+json`: the same shapes, `key` and `value` are base64.
/// - `application/x-ndjson` (or `application/jsonlines`): one R per line.
/// - `application/octet-stream`, `text/plain`: the body is one record's value; the key comes
///   from the `key` query parameter or the `X-Edgelog-Key` header, the partition from the
///   `partition` query parameter.
package struct RecordsRequestDecoder {
    package enum Format {
        case json, binaryJSON, ndjson, raw
    }

    package struct Decoded {
        package var records: [Record]
        /// Explicit partitions, when any record named one.
        package var partitions: [Int32?]?
    }

    package enum Failure: Error {
        case syntax(JSONSyntaxError, ndjsonLine: Int?)
    }

    static func format(contentType: String?) -> Format? {
        guard let contentType else { return .json }
        let mediaType = contentType.split(separator: ";").first.map { $0.trimmingCharacters(in: .whitespaces).lowercased() } ?? ""
        switch mediaType {
        case "application/json", "application/vnd.kafka.json.v2+json", "application/vnd.kafka.v2+json": return .json
        case "application/vnd.kafka.binary.v2+json": return .binaryJSON
        case "application/x-ndjson", "application/jsonlines", "application/x-jsonlines", "application/jsonl": return .ndjson
        case "application/octet-stream", "text/plain": return .raw
        default: return nil
        }
    }

    package static func decode(_ body: ByteBuffer, format: Format, now: Int64) throws(Failure) -> Decoded {
        switch format {
        case .raw:
            preconditionFailure("raw bodies are turned into a record by the handler")
        case .json, .binaryJSON:
            return try body.withUnsafeReadableBytes { (bytes) throws(Failure) in
                var scanner = JSONScanner(bytes)
                var decoded = Decoded(records: [], partitions: nil)
                scanner.skipWhitespace()
                do throws(JSONSyntaxError) {
                    if scanner.peek() == UInt8(ascii: "[") {
                        try decodeArray(&scanner, body: body, binary: format == .binaryJSON, now: now, into: &decoded)
                    } else {
                        let fields = try objectFields(&scanner)
                        if let records = fields.first(where: { $0.name == "records" }) {
                            var inner = JSONScanner(bytes, from: records.range.lowerBound, to: records.range.upperBound)
                            guard inner.peek() == UInt8(ascii: "[") else {
                                throw inner.error("\"records\" must be an array")
                            }
                            try decodeArray(&inner, body: body, binary: format == .binaryJSON, now: now, into: &decoded)
                        } else {
                            try append(fields, scanner: scanner, body: body, binary: format == .binaryJSON, now: now, into: &decoded)
                        }
                    }
                    scanner.skipWhitespace()
                    guard scanner.isAtEnd else { throw scanner.error("unexpected data after the JSON value") }
                } catch {
                    throw .syntax(error, ndjsonLine: nil)
                }
                return decoded
            }
        case .ndjson:
            return try body.withUnsafeReadableBytes { (bytes) throws(Failure) in
                var decoded = Decoded(records: [], partitions: nil)
                var lineStart = 0
                var lineNumber = 0
                while lineStart < bytes.count {
                    lineNumber += 1
                    var lineEnd = lineStart
                    while lineEnd < bytes.count && bytes[lineEnd] != 0x0A { lineEnd += 1 }
                    var scanner = JSONScanner(bytes, from: lineStart, to: lineEnd)
                    scanner.skipWhitespace()
                    if !scanner.isAtEnd {
                        do throws(JSONSyntaxError) {
                            let fields = try objectFields(&scanner)
                            scanner.skipWhitespace()
                            guard scanner.isAtEnd else { throw scanner.error("unexpected data after the record on this line") }
                            try append(fields, scanner: scanner, body: body, binary: false, now: now, into: &decoded)
                        } catch {
                            throw .syntax(error, ndjsonLine: lineNumber)
                        }
                    }
                    lineStart = lineEnd + 1
                }
                return decoded
            }
        }
    }

    private static func decodeArray(
        _ scanner: inout JSONScanner, body: ByteBuffer, binary: Bool, now: Int64, into decoded: inout Decoded
    ) throws(JSONSyntaxError) {
        try scanner.expect(UInt8(ascii: "["), "'['")
        scanner.skipWhitespace()
        if scanner.peek() == UInt8(ascii: "]") {
            scanner.index += 1
            return
        }
        while true {
            let fields = try objectFields(&scanner)
            try append(fields, scanner: scanner, body: body, binary: binary, now: now, into: &decoded)
            scanner.skipWhitespace()
            if scanner.peek() == UInt8(ascii: ",") {
                scanner.index += 1
                continue
            }
            try scanner.expect(UInt8(ascii: "]"), "',' or ']' after a record")
            return
        }
    }

    struct Field {
        var name: String
        var range: Range<Int>
    }

    /// The members of an object: names and the byte ranges of their values.
    static func objectFields(_ scanner: inout JSONScanner) throws(JSONSyntaxError) -> [Field] {
        scanner.skipWhitespace()
        guard scanner.peek() == UInt8(ascii: "{") else { throw scanner.error("expected a record object '{'\(scanner.found)") }
        scanner.index += 1
        var fields: [Field] = []
        scanner.skipWhitespace()
        if scanner.peek() == UInt8(ascii: "}") {
            scanner.index += 1
            return fields
        }
        while true {
            scanner.skipWhitespace()
            let nameStart = scanner.index
            let nameRange = try scanner.scanString()
            guard let name = scanner.decodeString(nameRange) else { throw scanner.error("member name is not UTF-8", at: nameStart) }
            try scanner.expect(UInt8(ascii: ":"), "':' after \"\(name)\"")
            let value = try scanner.scanValue(depth: 1)
            fields.append(Field(name: name, range: value))
            scanner.skipWhitespace()
            if scanner.peek() == UInt8(ascii: ",") {
                scanner.index += 1
                continue
            }
            try scanner.expect(UInt8(ascii: "}"), "',' or '}' in a record")
            return fields
        }
    }

    private static func append(
        _ fields: [Field], scanner: JSONScanner, body: ByteBuffer, binary: Bool, now: Int64, into decoded: inout Decoded
    ) throws(JSONSyntaxError) {
        let index = decoded.records.count
        var record = Record(timestamp: now, value: nil)
        var partition: Int32? = nil
        func invalid(_ message: String, _ field: Field) -> JSONSyntaxError {
            scanner.error("record \(index): \(message)", at: field.range.lowerBound)
        }
        func slice(_ range: Range<Int>) -> ByteBuffer {
            body.getSlice(at: body.readerIndex + range.lowerBound, length: range.count)!
        }
        func isNull(_ range: Range<Int>) -> Bool { scanner.bytes[range.lowerBound] == UInt8(ascii: "n") }
        func isString(_ range: Range<Int>) -> Bool { scanner.bytes[range.lowerBound] == UInt8(ascii: "\"") }
        func stringBytes(_ field: Field) throws(JSONSyntaxError) -> ByteBuffer {
            let inner = (field.range.lowerBound + 1)..<(field.range.upperBound - 1)
            if !UnsafeRawBufferPointer(rebasing: scanner.bytes[inner]).contains(UInt8(ascii: "\\")) { return slice(inner) }
            guard let text = scanner.decodeString(field.range) else { throw invalid("\"\(field.name)\" is not valid UTF-8", field) }
            return ByteBuffer(string: text)
        }
        func base64(_ field: Field) throws(JSONSyntaxError) -> ByteBuffer? {
            if isNull(field.range) { return nil }
            guard isString(field.range), let text = scanner.decodeString(field.range),
                let data = Data(base64Encoded: text)
            else { throw invalid("\"\(field.name)\" must be a base64 string or null", field) }
            return ByteBuffer(bytes: data)
        }
        for field in fields {
            switch field.name {
            case "key":
                if binary {
                    record.key = try base64(field)
                } else if isNull(field.range) {
                    record.key = nil
                } else {
                    record.key = isString(field.range) ? try stringBytes(field) : slice(field.range)
                }
            case "value":
                if binary {
                    record.value = try base64(field)
                } else {
                    record.value = isNull(field.range) ? nil : slice(field.range)
                }
            case "key_base64": record.key = try base64(field)
            case "value_base64": record.value = try base64(field)
            case "partition":
                guard let number = Int32(String(decoding: UnsafeRawBufferPointer(rebasing: scanner.bytes[field.range]), as: UTF8.self)),
                    number >= 0
                else { throw invalid("\"partition\" must be a non-negative integer", field) }
                partition = number
            case "timestamp":
                guard let number = Int64(String(decoding: UnsafeRawBufferPointer(rebasing: scanner.bytes[field.range]), as: UTF8.self)),
                    number >= 0
                else { throw invalid("\"timestamp\" must be milliseconds since the epoch", field) }
                record.timestamp = number
            case "headers":
                record.headers = try headers(field, scanner: scanner, invalid: invalid)
            default:
                throw invalid("unknown field \"\(field.name)\" (expected key, value, key_base64, value_base64, headers, partition, timestamp)", field)
            }
        }
        decoded.records.append(record)
        if let partition {
            if decoded.partitions == nil { decoded.partitions = Array(repeating: nil, count: index) }
            decoded.partitions!.append(partition)
        } else if decoded.partitions != nil {
            decoded.partitions!.append(nil)
        }
    }

    private static func headers(
        _ field: Field, scanner: JSONScanner, invalid: (String, Field) -> JSONSyntaxError
    ) throws(JSONSyntaxError) -> [RecordHeader] {
        var inner = JSONScanner(scanner.bytes, from: field.range.lowerBound, to: field.range.upperBound)
        guard inner.peek() == UInt8(ascii: "{") else { throw invalid("\"headers\" must be an object of name: text", field) }
        var headers: [RecordHeader] = []
        for member in try objectFields(&inner) {
            let first = scanner.bytes[member.range.lowerBound]
            if first == UInt8(ascii: "n") {
                headers.append(RecordHeader(key: member.name, value: nil))
            } else if first == UInt8(ascii: "\""), let text = scanner.decodeString(member.range) {
                headers.append(RecordHeader(key: member.name, value: ByteBuffer(string: text)))
            } else {
                throw invalid("header \"\(member.name)\" must be a string or null", member)
            }
        }
        return headers
    }
}
