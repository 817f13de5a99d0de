import EdgeLogKafka
import Foundation
import NIOCore

/// A coverage-guided fuzz target (libFuzzer) for the Kafka request decoder: each input is a
/// request frame after its size prefix, read the way the listener reads it (header, then the
/// generated decoder of its API and version). Whatever decodes must encode again and decode
/// to the same bytes; a crash, a trap or a failed check is a bug.
///
///     swift build --scratch-path .build-fuzz --product edgelog-fuzz \
///         -Xswiftc -sanitize=fuzzer,address -Xswiftc -DFUZZING
///     .build-fuzz/debug/edgelog-fuzz Tests/Fuzz/corpus -max_total_time=300
///
/// Built without FUZZING (as CI does) it replays inputs instead: `edgelog-fuzz FILE|DIR...`,
/// and `edgelog-fuzz --write-seeds DIR` writes one seed per API and version.
enum KafkaRequestFuzzer {
    static func run(_ bytes: UnsafeRawBufferPointer) {
        var buffer = ByteBuffer(bytes: bytes)
        guard var header = try? KafkaRequestHeader(from: &buffer),
            let api = KafkaAPIKey(rawValue: header.apiKey),
            api.supportedVersions.contains(header.apiVersion),
            (try? header.readRest(from: &buffer, headerVersion: api.isFlexibleRequest(header.apiVersion) ? 2 : 1)) != nil
        else { return }
        roundTrip(api.requestType, &buffer, version: header.apiVersion)
    }

    private static func roundTrip<Request: KafkaRequestMessage>(_: Request.Type, _ buffer: inout ByteBuffer, version: Int16) {
        guard let request = try? Request(from: &buffer, version: version) else { return }
        var first = ByteBuffer()
        do { try request.write(to: &first, version: version) } catch {
            fatalError("\(Request.self) v\(version) decoded but does not encode: \(error)")
        }
        var reread = first
        let again: Request
        do { again = try Request(from: &reread, version: version) } catch {
            fatalError("\(Request.self) v\(version) does not decode its own encoding: \(error)")
        }
        precondition(reread.readableBytes == 0, "\(Request.self) v\(version): \(reread.readableBytes) bytes left over")
        var second = ByteBuffer()
        try! again.write(to: &second, version: version)
        precondition(first == second, "\(Request.self) v\(version) encodes differently after a round trip")
    }

    /// A header for every API and supported version, followed by zeros (empty strings, arrays
    /// and numbers in most encodings): starting points for the fuzzer to mutate.
    static func seeds() -> [(name: String, bytes: [UInt8])] {
        KafkaAPIKey.allCases.flatMap { api in
            api.supportedVersions.map { version in
                var buffer = ByteBuffer()
                try! KafkaRequestHeader(apiKey: api.rawValue, apiVersion: version, correlationId: 1, clientId: "fuzz")
                    .write(to: &buffer, headerVersion: api.isFlexibleRequest(version) ? 2 : 1)
                buffer.writeRepeatingByte(0, count: 48)
                return ("\(api)-v\(version)", Array(buffer.readableBytesView))
            }
        }
    }
}

/// libFuzzer's entry point for one input.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzerTestOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    KafkaRequestFuzzer.run(UnsafeRawBufferPointer(start: data, count: size))
    return 0
}

#if FUZZING
/// libFuzzer's driver, called from our own `main` (SwiftPM names the executable's entry
/// point itself, so libFuzzer's `main` cannot be used).
@_silgen_name("LLVMFuzzerRunDriver")
func LLVMFuzzerRunDriver(
    _ argc: UnsafeMutablePointer<CInt>,
    _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>,
    _ callback: @convention(c) (UnsafePointer<UInt8>?, Int) -> CInt
) -> CInt
#endif

@main
struct FuzzMain {
    static func main() throws {
        #if FUZZING
        var argc = CommandLine.argc
        var argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>? = CommandLine.unsafeArgv
        exit(LLVMFuzzerRunDriver(&argc, &argv, fuzzerTestOneInput))
        #else
        try replay(Array(CommandLine.arguments.dropFirst()))
        #endif
    }

    /// Without libFuzzer: runs the inputs in files and directories (the committed corpus by
    /// default), or writes the seeds with `--write-seeds DIR`.
    static func replay(_ arguments: [String]) throws {
        var arguments = arguments
        if arguments.first == "--write-seeds", arguments.count == 2 {
            try FileManager.default.createDirectory(atPath: arguments[1], withIntermediateDirectories: true)
            for seed in KafkaRequestFuzzer.seeds() {
                try Data(seed.bytes).write(to: URL(fileURLWithPath: arguments[1] + "/" + seed.name))
            }
            return
        }
        if arguments.isEmpty { arguments = ["Tests/Fuzz/corpus"] }
        var count = 0
        for path in arguments {
            var isDirectory: ObjCBool = false
            guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
                throw CocoaError(.fileNoSuchFile, userInfo: [NSFilePathErrorKey: path])
            }
            let files = isDirectory.boolValue
                ? try FileManager.default.contentsOfDirectory(atPath: path).sorted().map { path + "/" + $0 } : [path]
            for file in files {
                let bytes = try Data(contentsOf: URL(fileURLWithPath: file))
                bytes.withUnsafeBytes { KafkaRequestFuzzer.run($0) }
                count += 1
            }
        }
        print("replayed \(count) inputs: no crash")
    }
}
