public import NIOCore

/// A small key/value file (recovery point, log start, a replicator's acknowledged offset),
/// written atomically and guarded by a version and a CRC-32C:
///
///     edgelog-checkpoint 1
///     offset 1234
///     position 5678
///     crc32c 1a2b3c4d          CRC-32C of every byte above this line
///
/// A file that fails to parse or whose checksum does not match throws `.corruptCheckpoint`;
/// callers fall back to the safe choice (full recovery, offset 0) and log a warning.
public struct Checkpoint: Sendable, Equatable {
    public static let magic = "edgelog-checkpoint"
    public static let version = 1

    public var values: [String: Int64]

    public init(_ values: [String: Int64]) {
        self.values = values
    }

    public subscript(key: String) -> Int64? { values[key] }

    public func encoded() -> ByteBuffer {
        var text = "\(Self.magic) \(Self.version)\n"
        for key in values.keys.sorted() {
            text += "\(key) \(values[key]!)\n"
        }
        let crc = CRC32C.checksum(text.utf8)
        text += "crc32c \(String(crc, radix: 16))\n"
        return ByteBuffer(string: text)
    }

    public func write(to path: String) throws(StorageError) {
        try FileSystem.writeAtomically(encoded(), to: path)
    }

    /// The checkpoint at `path`, or nil when there is none.
    public static func read(from path: String) throws(StorageError) -> Checkpoint? {
        guard FileSystem.exists(path) else { return nil }
        let file = try LogFile(readOnlyPath: path)
        let size = try file.size()
        guard size <= 64 * 1024 else { throw .corruptCheckpoint(path: path, reason: "\(size) bytes is too large") }
        var bytes = try file.read(at: 0, length: Int(size))
        guard let text = bytes.readString(length: bytes.readableBytes) else {
            throw .corruptCheckpoint(path: path, reason: "not UTF-8")
        }
        return try decode(text, path: path)
    }

    static func decode(_ text: String, path: String) throws(StorageError) -> Checkpoint {
        var lines = text.split(separator: "\n", omittingEmptySubsequences: true)
        guard let crcLine = lines.popLast(), crcLine.hasPrefix("crc32c ") else {
            throw .corruptCheckpoint(path: path, reason: "no crc32c line at the end")
        }
        let storedText = crcLine.dropFirst("crc32c ".count)
        guard let stored = UInt32(storedText, radix: 16) else {
            throw .corruptCheckpoint(path: path, reason: "unreadable crc32c '\(storedText)'")
        }
        let body = lines.map { $0 + "\n" }.joined()
        let computed = CRC32C.checksum(body.utf8)
        guard stored == computed else {
            throw .corruptCheckpoint(
                path: path, reason: "checksum mismatch: stored \(storedText), computed \(String(computed, radix: 16))")
        }
        guard let header = lines.first, header == "\(magic) \(version)" else {
            throw .corruptCheckpoint(path: path, reason: "unknown header '\(lines.first ?? "")'")
        }
        var values: [String: Int64] = [:]
        for line in lines.dropFirst() {
            let parts = line.split(separator: " ")
            guard parts.count == 2, let value = Int64(parts[1]) else {
                throw .corruptCheckpoint(path: path, reason: "unreadable line '\(line)'")
            }
            values[String(parts[0])] = value
        }
        return Checkpoint(values)
    }
}
