import Foundation

/// Coverage-guided fuzzing (libFuzzer) of the decoders that take bytes from outside, one
/// target at a time:
///
///     swift build --scratch-path .build-fuzz --product edgelog-fuzz \
///         -Xswiftc -sanitize=fuzzer,address -Xswiftc -DFUZZING
///     .build-fuzz/debug/edgelog-fuzz toml /tmp/corpus -max_total_time=600
///
/// Built without FUZZING (as CI does) it replays inputs instead:
/// `edgelog-fuzz TARGET [FILE|DIR...]` (the committed corpus `Tests/Fuzz/TARGET` by default),
/// and `edgelog-fuzz TARGET --write-seeds DIR` writes the target's seeds.
@main
struct FuzzMain {
    static func main() throws {
        var arguments = Array(CommandLine.arguments.dropFirst())
        // libFuzzer re-runs this program for -merge and -fork with its own flags only, so the
        // target's name also travels in the environment.
        let name: String
        if let first = arguments.first, fuzzTargets[first] != nil {
            name = first
            arguments.removeFirst()
        } else if let inherited = ProcessInfo.processInfo.environment["EDGELOG_FUZZ_TARGET"], fuzzTargets[inherited] != nil {
            name = inherited
        } else {
            FileHandle.standardError.write(Data("usage: edgelog-fuzz \(fuzzTargets.keys.sorted().joined(separator: "|")) [ARGS...]\n".utf8))
            exit(2)
        }
        let target = fuzzTargets[name]!
        #if FUZZING
        setenv("EDGELOG_FUZZ_TARGET", name, 1)
        selectedTarget = target
        // libFuzzer reads its own flags; the target's name is not one of them.
        var argv: [UnsafeMutablePointer<CChar>?] = ([CommandLine.arguments[0]] + arguments).map { strdup($0) } + [nil]
        var argc = CInt(argv.count - 1)
        exit(argv.withUnsafeMutableBufferPointer { buffer in
            var pointer: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>? = buffer.baseAddress
            return LLVMFuzzerRunDriver(&argc, &pointer, fuzzerTestOneInput)
        })
        #else
        try replay(target, name: name, arguments)
        #endif
    }

    /// Without libFuzzer: runs the inputs in files and directories, or writes the seeds.
    static func replay(_ target: any FuzzTarget.Type, name: String, _ arguments: [String]) throws {
        var arguments = arguments
        if arguments.first == "--write-seeds", arguments.count == 2 {
            try FileManager.default.createDirectory(atPath: arguments[1], withIntermediateDirectories: true)
            for seed in target.seeds() {
                try Data(seed.bytes).write(to: URL(fileURLWithPath: arguments[1] + "/" + seed.name))
            }
            return
        }
        if arguments.isEmpty { arguments = ["Tests/Fuzz/\(name)"] }
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
                bytes.withUnsafeBytes { target.run($0) }
                count += 1
            }
        }
        print("\(name): replayed \(count) inputs, no crash")
    }
}

#if FUZZING
nonisolated(unsafe) var selectedTarget: (any FuzzTarget.Type)?

/// libFuzzer's entry point for one input.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzerTestOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    selectedTarget?.run(UnsafeRawBufferPointer(start: data, count: size))
    return 0
}

/// libFuzzer's driver, called from our own `main` (SwiftPM names the executable's entry
/// point itself, so libFuzzer's `main` cannot be used).
@_silgen_name("LLVMFuzzerRunDriver")
func LLVMFuzzerRunDriver(
    _ argc: UnsafeMutablePointer<CInt>,
    _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>,
    _ callback: @convention(c) (UnsafePointer<UInt8>?, Int) -> CInt
) -> CInt
#endif
