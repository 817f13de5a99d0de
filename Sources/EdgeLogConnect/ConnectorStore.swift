import EdgeLogCore
import EdgeLogStorage
import Foundation
import NIOCore

/// Connectors made through the API, and the target state of every connector, in
/// `<data_dir>/.connectors/<name>.json` (written atomically, in a directory of mode 0700:
/// configurations may hold passwords). A connector from the configuration file has a file here only when its
/// target state was changed (paused, stopped), so the file stays the one source of its
/// configuration.
struct ConnectorStore: Sendable {
    struct Entry: Codable, Equatable, Sendable {
        var name: String
        /// Absent for connectors from the configuration file.
        var type: String?
        var config: ConnectorConfig?
        var state: ConnectorTargetState
    }

    let directory: String

    init(dataDirectory: String) {
        directory = dataDirectory + "/.connectors"
    }

    private func path(_ name: String) -> String { directory + "/\(name).json" }

    /// Every entry that reads; one that does not is reported and left in place.
    func load(problem: (String, String) -> Void) -> [Entry] {
        guard let files = try? FileSystem.list(directory) else { return [] }
        var entries: [Entry] = []
        for file in files.sorted() where file.hasSuffix(".json") {
            let path = directory + "/" + file
            do {
                let data = try Data(contentsOf: URL(fileURLWithPath: path))
                let entry = try JSONDecoder().decode(Entry.self, from: data)
                guard entry.name + ".json" == file else {
                    problem(path, "names connector '\(entry.name)'")
                    continue
                }
                entries.append(entry)
            } catch {
                problem(path, "\(error)")
            }
        }
        return entries
    }

    func save(_ entry: Entry) throws {
        try FileSystem.createDirectory(directory)
        // Configurations may hold passwords: only the daemon's user reads them.
        chmod(directory, 0o700)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        let data = try encoder.encode(entry)
        try FileSystem.writeAtomically(ByteBuffer(bytes: data), to: path(entry.name))
    }

    func remove(_ name: String) throws {
        let path = path(name)
        if FileManager.default.fileExists(atPath: path) { try FileManager.default.removeItem(atPath: path) }
    }
}
