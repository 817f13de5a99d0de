import EdgeLogInspector
import ArgumentParser
import EdgeLogStorage
import Foundation

/// `edgelog log dump <path>`: every batch of a partition's segments, like kafka-dump-log.
struct LogDumpCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "dump",
        abstract: "Print the batches of a partition directory or segment file, like kafka-dump-log.",
        discussion: """
            Prints one line per batch (offsets, count, producer, position, timestamp, size, codec, \
            CRC and whether it matches), and with --records one line per record. A torn or \
            unreadable tail is printed as a problem at its byte position. Files are opened \
            read-only and nothing is changed.
            """)

    @Argument(help: "A partition directory (<data>/<topic>-<partition>) or one .log segment file.")
    var path: String

    @Flag(help: "Decode the records and print one line per record.")
    var records = false

    @Flag(help: "Print JSON instead of text.")
    var json = false

    @Option(help: "Bytes of each key, value and header value to preview with --records.")
    var previewBytes = 64

    func validate() throws {
        guard previewBytes >= 0 else { throw ValidationError("--preview-bytes must not be negative") }
        guard FileManager.default.fileExists(atPath: path) else { throw ValidationError("\(path) does not exist") }
    }

    func run() throws {
        let compressor = BatchCompressor()
        let isDirectory = FileSystem.isDirectory(path)
        if json {
            let output: Data
            if isDirectory {
                let dump = try LogInspector.dump(
                    partitionDirectory: path, includeRecords: records, previewBytes: previewBytes, compressor: compressor)
                output = try Self.encoder.encode(dump)
            } else {
                let dump = try LogInspector.dump(
                    segmentPath: path, includeRecords: records, previewBytes: previewBytes, compressor: compressor)
                output = try Self.encoder.encode(dump)
            }
            print(String(decoding: output, as: UTF8.self))
            return
        }
        guard isDirectory else {
            print(try LogInspector.dump(segmentPath: path, includeRecords: records, previewBytes: previewBytes, compressor: compressor))
            return
        }
        // Segment by segment, so that only one segment's dump is in memory at a time.
        for segmentPath in try LogInspector.segmentPaths(partitionDirectory: path) {
            do {
                print(try LogInspector.dump(segmentPath: segmentPath, includeRecords: records, previewBytes: previewBytes, compressor: compressor))
            } catch {
                print("Dumping \(segmentPath)\nProblem: \(error)")
            }
        }
        for checkpoint in LogInspector.checkpoints(partitionDirectory: path) {
            print(checkpoint)
        }
    }

    static var encoder: JSONEncoder {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        return encoder
    }
}
