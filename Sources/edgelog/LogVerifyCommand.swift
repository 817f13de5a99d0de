import EdgeLogInspector
import ArgumentParser
import EdgeLogStorage
import Foundation

/// `edgelog log verify <dir>…`: checks partition directories offline; exit code 0 when all are
/// healthy, 1 otherwise.
struct LogVerifyCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "verify",
        abstract: "Check partition directories: framing, CRCs, offsets, records, indexes and checkpoints.",
        discussion: """
            Prints each problem as <file>:<position>: <message>, then one summary line per \
            directory. Exits with 0 when every directory is healthy and 1 otherwise. Files are \
            opened read-only and nothing is changed: run it while the daemon is stopped, or on a copy.
            """)

    @Argument(help: "Partition directories (<data>/<topic>-<partition>).")
    var directories: [String]

    @Flag(help: "Print the reports as a JSON array instead of text.")
    var json = false

    func validate() throws {
        guard !directories.isEmpty else { throw ValidationError("give at least one partition directory") }
    }

    func run() throws {
        let compressor = BatchCompressor()
        var reports: [VerifyReport] = []
        for directory in directories {
            let report: VerifyReport
            do {
                report = try LogInspector.verify(partitionDirectory: directory, compressor: compressor)
            } catch {
                var unreadable = VerifyReport(directory: directory)
                unreadable.problems.append(
                    LogProblem(file: directory, position: nil, kind: .unreadableFile, message: error.description))
                report = unreadable
            }
            if !json { print(report) }
            reports.append(report)
        }
        if json {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
            print(String(decoding: try encoder.encode(reports), as: UTF8.self))
        }
        if !reports.allSatisfy(\.isHealthy) { throw ExitCode.failure }
    }
}
