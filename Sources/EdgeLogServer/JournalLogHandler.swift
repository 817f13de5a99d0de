import Foundation
public import Logging
import EdgeLogCore
import EdgeLogMQTT
import EdgeLogReplication
import EdgeLogKafkaListener
import EdgeLogHTTP

/// The daemon's log handler: swift-log's `StreamLogHandler` lines on standard error, and when
/// standard error is the systemd journal (`JOURNAL_STREAM` names it, see systemd.exec(5)) each
/// line starts with its syslog priority, `<4>` for a warning, which journald strips and files
/// the line under (sd-daemon(3)). So `journalctl -u edgelog -p warning` shows warnings and
/// worse, instead of every line at the default priority, info.
public struct JournalLogHandler: LogHandler {
    private var lines: StreamLogHandler
    private let label: String
    private let toJournal: Bool

    /// - Parameter journalStream: `JOURNAL_STREAM`; nil reads it from the environment.
    public init(label: String, journalStream: String? = nil) {
        self.label = label
        self.lines = StreamLogHandler.standardError(label: label)
        self.toJournal = Self.standardErrorIsJournal(journalStream ?? ProcessInfo.processInfo.environment["JOURNAL_STREAM"])
    }

    public var logLevel: Logger.Level {
        get { lines.logLevel }
        set { lines.logLevel = newValue }
    }

    public var metadata: Logger.Metadata {
        get { lines.metadata }
        set { lines.metadata = newValue }
    }

    public var metadataProvider: Logger.MetadataProvider? {
        get { lines.metadataProvider }
        set { lines.metadataProvider = newValue }
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { lines[metadataKey: key] }
        set { lines[metadataKey: key] = newValue }
    }

    public func log(event: LogEvent) {
        guard toJournal else { return lines.log(event: event) }
        // Logging is not on the ingest path: a handler per line is cheap enough.
        var prefixed = StreamLogHandler(
            label: label, stream: PrioritizedStandardError(priority: Self.priority(event.level)),
            metadataProvider: lines.metadataProvider)
        prefixed.logLevel = lines.logLevel
        prefixed.metadata = lines.metadata
        prefixed.log(event: event)
    }

    /// syslog(3) priorities, as journald reads them.
    static func priority(_ level: Logger.Level) -> Int {
        switch level {
        case .trace, .debug: 7
        case .info: 6
        case .notice: 5
        case .warning: 4
        case .error: 3
        case .critical: 2
        }
    }

    /// `JOURNAL_STREAM` is "device:inode" of the journal's stream; it is inherited by children
    /// whose standard error may have been redirected, so it counts only when fd 2 is that file.
    static func standardErrorIsJournal(_ journalStream: String?) -> Bool {
        guard let parts = journalStream?.split(separator: ":"), parts.count == 2,
            let device = UInt64(parts[0]), let inode = UInt64(parts[1])
        else { return false }
        var info = stat()
        guard fstat(2, &info) == 0 else { return false }
        return UInt64(info.st_dev) == device && UInt64(info.st_ino) == inode
    }
}

/// Standard error with a `<N>` prefix on every line (journald reads each line on its own, so
/// a message with line breaks keeps its priority throughout, and a logged value cannot forge
/// another), each entry in one write(2) so that lines from several threads never interleave.
private struct PrioritizedStandardError: TextOutputStream, Sendable {
    let priority: Int

    mutating func write(_ string: String) {
        let prefix = "<\(priority)>"
        var text = string.hasSuffix("\n") ? String(string.dropLast()) : string
        text = prefix + text.replacingOccurrences(of: "\n", with: "\n" + prefix) + "\n"
        text.withUTF8 { bytes in
            var done = 0
            while done < bytes.count {
                let written = Foundation.write(2, bytes.baseAddress! + done, bytes.count - done)
                if written < 0 && errno == EINTR { continue }
                if written <= 0 { return }
                done += written
            }
        }
    }
}
