import EdgeLogStorage
import Foundation
import NIOCore

/// Helpers shared by the storage tests.
enum Fixtures {
    static func buffer(_ string: String) -> ByteBuffer { ByteBuffer(string: string) }

    static func record(_ index: Int, timestamp: Int64 = 1_700_000_000_000, headers: Bool = true) -> Record {
        Record(
            timestamp: timestamp + Int64(index),
            key: index % 5 == 0 ? nil : buffer("key-\(index)"),
            value: buffer("{\"sensor\":\"t\(index)\",\"celsius\":\(20 + index % 7).5}"),
            headers: headers ? [RecordHeader(key: "source", value: buffer("test")), RecordHeader(key: "empty", value: nil)] : [])
    }

    static func batch(
        records: [Record], baseOffset: Int64 = 0, codec: CompressionCodec = .none
    ) throws -> ByteBuffer {
        var builder = RecordBatchBuilder(codec: codec)
        for record in records { builder.append(record) }
        var out = ByteBuffer()
        try builder.finish(baseOffset: baseOffset, into: &out)
        return out
    }

    /// A fresh directory under the system temp dir, removed by the caller with `remove`.
    static func temporaryDirectory(_ name: String = #function) -> String {
        let sanitized = name.filter { $0.isLetter || $0.isNumber }
        let path = NSTemporaryDirectory() + "edgelog-test-\(sanitized)-\(UUID().uuidString.prefix(8))"
        try! FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }

    static func remove(_ path: String) {
        try? FileManager.default.removeItem(atPath: path)
    }
}
