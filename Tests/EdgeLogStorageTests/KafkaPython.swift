import EdgeLogStorage
import Foundation
import NIOCore

/// Runs `Tests/Interop/kafka_batches.py`, which builds and parses RecordBatch v2 with
/// kafka-python, an implementation of the format written independently of edgelog.
///
/// Needs a python3 with kafka-python, lz4 and zstandard: the first `python3` on `PATH`, or the
/// interpreter named by `EDGELOG_PYTHON`.
struct KafkaPython: Sendable {
    struct Failure: Error, CustomStringConvertible {
        var description: String
    }

    /// A batch kafka-python built, and the codec it actually used: it falls back to none when
    /// compressing does not shrink the records.
    struct Built: Sendable {
        var batch: ByteBuffer
        var codecUsed: Int16
    }

    /// A batch as kafka-python's `DefaultRecordBatch` reads it.
    struct ParsedBatch: Decodable, Sendable {
        var baseOffset: Int64
        var batchLength: Int32
        var sizeInBytes: Int
        var bytesGiven: Int
        var partitionLeaderEpoch: Int32
        var magic: Int8
        var crc: UInt32
        var crcValid: Bool
        var attributes: Int16
        var compressionType: Int16
        var isTransactional: Bool
        var isControlBatch: Bool
        var timestampType: Int
        var lastOffsetDelta: Int32
        var firstTimestamp: Int64
        var maxTimestamp: Int64
        var producerId: Int64
        var producerEpoch: Int16
        var baseSequence: Int32
        var recordsCount: Int32
        var records: [ParsedRecord]
    }

    struct ParsedRecord: Decodable, Sendable {
        var offset: Int64
        var timestamp: Int64
        var key: String?
        var value: String?
        var headers: [HeaderPair]

        func record() throws -> Record {
            let recordHeaders = try headers.map { RecordHeader(key: $0.name, value: try KafkaPython.bytes($0.value)) }
            return Record(
                offset: offset, timestamp: timestamp,
                key: try KafkaPython.bytes(key), value: try KafkaPython.bytes(value), headers: recordHeaders)
        }
    }

    struct Murmur2: Decodable, Sendable {
        /// kafka-python's murmur2: the 32 bits as an unsigned number.
        var hashes: [UInt32]
        /// The same bits as Java's `Utils.murmur2` returns them.
        var hashesInt32: [Int32]
        /// DefaultPartitioner's choice for a non-null key: `(murmur2(key) & 0x7fffffff) % partitions`.
        var partitions: [Int]
    }

    /// A header on the wire to the script: `[name, base64 or null]`.
    struct HeaderPair: Codable, Sendable {
        var name: String
        var value: String?

        init(_ header: RecordHeader) {
            name = header.key
            value = KafkaPython.base64(header.value)
        }

        init(from decoder: any Decoder) throws {
            var container = try decoder.unkeyedContainer()
            name = try container.decode(String.self)
            value = try container.decodeNil() ? nil : container.decode(String.self)
        }

        func encode(to encoder: any Encoder) throws {
            var container = encoder.unkeyedContainer()
            try container.encode(name)
            if let value { try container.encode(value) } else { try container.encodeNil() }
        }
    }

    let interpreter: [String]
    let scriptPath: String
    var timeout: TimeInterval = 120

    init() {
        // #filePath here, not as a default argument, so that it names this file.
        let testsDirectory = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        scriptPath = testsDirectory.appendingPathComponent("Interop").appendingPathComponent("kafka_batches.py").path
        if let python = ProcessInfo.processInfo.environment["EDGELOG_PYTHON"], !python.isEmpty {
            interpreter = [python]
        } else {
            interpreter = ["/usr/bin/env", "python3"]
        }
    }

    // MARK: Commands

    /// kafka-python's `DefaultRecordBatchBuilder` builds a batch of `records` (offset deltas
    /// 0, 1, …; the records' own offsets are ignored) with `baseOffset` set afterwards.
    func build(
        codec: CompressionCodec, baseOffset: Int64, producer: RecordBatchBuilder.ProducerStamp = .none,
        records: [Record]
    ) throws -> Built {
        let request = BuildRequest(
            codec: codec.rawValue, baseOffset: baseOffset, producer: producer,
            records: records.enumerated().map { BuildRecord(offsetDelta: Int64($0.offset), record: $0.element) })
        let response = try run("build", request, as: BuildResponse.self)
        guard let batch = try Self.bytes(response.batch) else { throw Failure(description: "build returned no batch") }
        return Built(batch: batch, codecUsed: response.codecUsed)
    }

    /// kafka-python's `DefaultRecordBatch` reads each batch: header fields, `validate_crc()` and
    /// every record.
    func parse(_ batches: [ByteBuffer]) throws -> [ParsedBatch] {
        let request = ParseRequest(batches: batches.map { Self.base64($0)! })
        return try run("parse", request, as: ParseResponse.self).batches
    }

    /// kafka-python's murmur2 and DefaultPartitioner for each key.
    func murmur2(_ keys: [ByteBuffer], partitions: Int) throws -> Murmur2 {
        try run("murmur2", Murmur2Request(keys: keys.map { Self.base64($0)! }, partitions: partitions), as: Murmur2.self)
    }

    // MARK: Base64

    static func base64(_ bytes: ByteBuffer?) -> String? {
        bytes.map { Data($0.readableBytesView).base64EncodedString() }
    }

    static func bytes(_ base64: String?) throws -> ByteBuffer? {
        guard let base64 else { return nil }
        guard let data = Data(base64Encoded: base64) else {
            throw Failure(description: "kafka_batches.py returned invalid base64: \(base64.prefix(40))")
        }
        return ByteBuffer(bytes: data)
    }

    // MARK: Running the script

    private func run<Request: Encodable, Response: Decodable>(
        _ command: String, _ request: Request, as: Response.Type
    ) throws -> Response {
        let output = try run(command, input: try JSONEncoder().encode(request))
        let decoder = JSONDecoder()
        decoder.keyDecodingStrategy = .convertFromSnakeCase
        do {
            return try decoder.decode(Response.self, from: output)
        } catch {
            throw Failure(
                description: "cannot decode the output of kafka_batches.py \(command): \(error)\n"
                    + String(decoding: output.prefix(400), as: UTF8.self))
        }
    }

    /// Runs the script with `input` on stdin and returns its stdout. Standard streams go through
    /// temporary files, so neither side can block on a full pipe.
    private func run(_ command: String, input: Data) throws -> Data {
        let files = FileManager.default
        let directory = files.temporaryDirectory.appendingPathComponent("edgelog-kafka-python-\(UUID().uuidString)")
        try files.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? files.removeItem(at: directory) }
        let inputURL = directory.appendingPathComponent("stdin.json")
        let outputURL = directory.appendingPathComponent("stdout.json")
        let errorURL = directory.appendingPathComponent("stderr.txt")
        try input.write(to: inputURL)
        guard files.createFile(atPath: outputURL.path, contents: nil),
            files.createFile(atPath: errorURL.path, contents: nil)
        else { throw Failure(description: "cannot create files in \(directory.path)") }

        let standardInput = try FileHandle(forReadingFrom: inputURL)
        let standardOutput = try FileHandle(forWritingTo: outputURL)
        let standardError = try FileHandle(forWritingTo: errorURL)
        defer {
            try? standardInput.close()
            try? standardOutput.close()
            try? standardError.close()
        }

        let process = Process()
        process.executableURL = URL(fileURLWithPath: interpreter[0])
        process.arguments = Array(interpreter.dropFirst()) + [scriptPath, command]
        process.standardInput = standardInput
        process.standardOutput = standardOutput
        process.standardError = standardError
        do {
            try process.run()
        } catch {
            throw Failure(description: "cannot start \(interpreter.joined(separator: " ")): \(error)")
        }
        let deadline = Date().addingTimeInterval(timeout)
        while process.isRunning && Date() < deadline {
            Thread.sleep(forTimeInterval: 0.01)
        }
        if process.isRunning {
            process.terminate()
            process.waitUntilExit()
            throw Failure(description: "kafka_batches.py \(command) did not finish within \(Int(timeout)) s")
        }
        process.waitUntilExit()

        let output = try Data(contentsOf: outputURL)
        guard process.terminationReason == .exit, process.terminationStatus == 0 else {
            let errors = (try? String(decoding: Data(contentsOf: errorURL), as: UTF8.self)) ?? ""
            throw Failure(
                description: "\(interpreter.joined(separator: " ")) \(scriptPath) \(command) failed "
                    + "(status \(process.terminationStatus)); needs kafka-python, lz4 and zstandard, "
                    + "or EDGELOG_PYTHON naming a python3 that has them:\n\(errors)")
        }
        return output
    }

    // MARK: Requests

    private struct BuildRequest: Encodable {
        var codec: Int16
        var baseOffset: Int64
        var producer: RecordBatchBuilder.ProducerStamp
        var records: [BuildRecord]

        enum CodingKeys: String, CodingKey {
            case codec
            case baseOffset = "base_offset"
            case producerId = "producer_id"
            case producerEpoch = "producer_epoch"
            case baseSequence = "base_sequence"
            case records
        }

        func encode(to encoder: any Encoder) throws {
            var container = encoder.container(keyedBy: CodingKeys.self)
            try container.encode(codec, forKey: .codec)
            try container.encode(baseOffset, forKey: .baseOffset)
            try container.encode(producer.id, forKey: .producerId)
            try container.encode(producer.epoch, forKey: .producerEpoch)
            try container.encode(producer.baseSequence, forKey: .baseSequence)
            try container.encode(records, forKey: .records)
        }
    }

    private struct BuildRecord: Encodable {
        var offsetDelta: Int64
        var timestamp: Int64
        var key: String?
        var value: String?
        var headers: [HeaderPair]

        init(offsetDelta: Int64, record: Record) {
            self.offsetDelta = offsetDelta
            timestamp = record.timestamp
            key = KafkaPython.base64(record.key)
            value = KafkaPython.base64(record.value)
            headers = record.headers.map { HeaderPair($0) }
        }

        enum CodingKeys: String, CodingKey {
            case offsetDelta = "offset_delta"
            case timestamp, key, value, headers
        }

        // Explicit nulls: the script takes a missing key and a null one alike, but the wire
        // format in its documentation has null.
        func encode(to encoder: any Encoder) throws {
            var container = encoder.container(keyedBy: CodingKeys.self)
            try container.encode(offsetDelta, forKey: .offsetDelta)
            try container.encode(timestamp, forKey: .timestamp)
            if let key { try container.encode(key, forKey: .key) } else { try container.encodeNil(forKey: .key) }
            if let value { try container.encode(value, forKey: .value) } else { try container.encodeNil(forKey: .value) }
            try container.encode(headers, forKey: .headers)
        }
    }

    private struct BuildResponse: Decodable {
        var batch: String
        var codecUsed: Int16
    }

    private struct ParseRequest: Encodable {
        var batches: [String]
    }

    private struct ParseResponse: Decodable {
        var batches: [ParsedBatch]
    }

    private struct Murmur2Request: Encodable {
        var keys: [String]
        var partitions: Int
    }
}
