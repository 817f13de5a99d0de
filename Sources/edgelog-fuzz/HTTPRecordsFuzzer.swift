@testable import EdgeLogServer
import NIOCore
import EdgeLogHTTP

/// The body of `POST /v1/topics/{topic}/records`: the first byte picks the format (JSON,
/// Confluent binary JSON, NDJSON), the rest is the body. It decodes into records or is
/// refused with a syntax error; a decoded record's key and value are readable.
enum HTTPRecordsFuzzer: FuzzTarget {
    static func run(_ bytes: UnsafeRawBufferPointer) {
        guard let selector = bytes.first else { return }
        let format: RecordsRequestDecoder.Format = [.json, .binaryJSON, .ndjson][Int(selector) % 3]
        let body = ByteBuffer(bytes: bytes.dropFirst())
        guard let decoded = try? RecordsRequestDecoder.decode(body, format: format, now: 1) else { return }
        precondition(decoded.partitions.map { $0.count == decoded.records.count } ?? true, "a partition per record")
        for record in decoded.records {
            _ = record.key?.readableBytes
            _ = record.value?.readableBytes
            for header in record.headers { _ = header.key.utf8.count }
        }
    }

    static func seeds() -> [(name: String, bytes: [UInt8])] {
        [
            ("json", 0, #"{"records":[{"key":"k","value":{"t":21.5,"a":[1,2,{"b":null}]},"headers":{"h":"v","n":null},"partition":0,"timestamp":5}]}"#),
            ("json-array", 0, #"[{"key":{"id":7},"value":"s\u00e9\n"},{"value":true},{"value":-1.5e3}]"#),
            ("json-single", 0, #"{"value":"x","key_base64":"AAEC","value_base64":"aGk="}"#),
            ("binary", 1, #"{"records":[{"key":"a2V5","value":"dmFsdWU="}]}"#),
            ("ndjson", 2, "{\"key\":\"a\",\"value\":1}\n{\"value\":[\"x\"]}\n\n{\"value\":{}}\n"),
        ].map { ($0.0, [UInt8($0.1)] + Array($0.2.utf8)) }
    }
}
