import Foundation
import Synchronization
import EdgeLogCore

#if canImport(Glibc)
import Glibc
#endif

/// Committed consumer-group offsets, durable: one small file per group under
/// `<data>/.groups/`, rewritten whole on every commit (temp file, fsync, rename, directory
/// fsync), so a commit that was answered survives a crash or a power cut.
package final class GroupOffsetStore: Sendable {
    struct Committed: Codable, Sendable, Equatable {
        var offset: Int64
        var metadata: String?
    }

    /// topic -> partition -> committed offset.
    typealias Offsets = [String: [Int32: Committed]]

    let directory: String
    private let cache = Mutex<[String: Offsets]>([:])
    /// Commits are written here, one at a time, off Swift's cooperative threads (an fsync
    /// there would stall every task on a 2-core box).
    private let writer = DispatchQueue(label: "edgelog.group-offsets")

    init(dataDirectory: String) {
        self.directory = dataDirectory + "/.groups"
    }

    /// Group ids may hold any character; the file name is their UTF-8 in hex.
    private func path(_ group: String) -> String {
        directory + "/" + group.utf8.map { String(format: "%02x", $0) }.joined() + ".json"
    }

    func offsets(_ group: String) -> Offsets {
        if let cached = cache.withLock({ $0[group] }) { return cached }
        var loaded: Offsets = [:]
        if let data = FileManager.default.contents(atPath: path(group)),
            let decoded = try? JSONDecoder().decode([String: [String: Committed]].self, from: data)
        {
            for (topic, partitions) in decoded {
                loaded[topic] = Dictionary(uniqueKeysWithValues: partitions.compactMap { key, value in Int32(key).map { ($0, value) } })
            }
        }
        // Only groups with offsets are cached: asking about any name must not grow memory.
        if !loaded.isEmpty { cache.withLock { $0[group] = loaded } }
        return loaded
    }

    /// Every group with committed offsets (for ListGroups after a restart).
    func groupsOnDisk() -> [String] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
        return names.compactMap { name -> String? in
            guard name.hasSuffix(".json") else { return nil }
            let hex = Array(name.dropLast(5))
            guard hex.count % 2 == 0 else { return nil }
            var bytes: [UInt8] = []
            for index in stride(from: 0, to: hex.count, by: 2) {
                guard let byte = UInt8(String(hex[index...index + 1]), radix: 16) else { return nil }
                bytes.append(byte)
            }
            return String(validating: bytes, as: UTF8.self)
        }
    }

    /// Persists `updates` and returns once they are durable.
    func commit(_ group: String, _ updates: [(topic: String, partition: Int32, Committed)]) async throws {
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
            writer.async {
                do {
                    try self.write(group, updates)
                    continuation.resume()
                } catch {
                    continuation.resume(throwing: error)
                }
            }
        }
    }

    private func write(_ group: String, _ updates: [(topic: String, partition: Int32, Committed)]) throws {
        var offsets = self.offsets(group)
        for (topic, partition, committed) in updates { offsets[topic, default: [:]][partition] = committed }
        let encodable = offsets.mapValues { partitions in
            Dictionary(uniqueKeysWithValues: partitions.map { ("\($0.key)", $0.value) })
        }
        try writeAtomically(try JSONEncoder().encode(encodable), to: path(group))
        cache.withLock { $0[group] = offsets }
    }

    private func writeAtomically(_ data: Data, to path: String) throws {
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let temporary = path + ".tmp"
        guard FileManager.default.createFile(atPath: temporary, contents: data) else {
            throw CocoaError(.fileWriteUnknown, userInfo: [NSFilePathErrorKey: temporary])
        }
        let handle = try FileHandle(forUpdating: URL(fileURLWithPath: temporary))
        try handle.synchronize()
        try handle.close()
        guard rename(temporary, path) == 0 else { throw POSIXError(POSIXErrorCode(rawValue: errno) ?? .EIO) }
        let directoryHandle = open(directory, O_RDONLY)
        if directoryHandle >= 0 {
            fsync(directoryHandle)
            close(directoryHandle)
        }
    }
}
