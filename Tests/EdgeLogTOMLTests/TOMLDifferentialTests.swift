import EdgeLogTOML
import Foundation
import Testing

/// The parser against Python's `tomllib` (a TOML 1.0 parser from the standard library) on
/// thousands of damaged copies of the shipped configuration files: both must accept and refuse
/// the same documents. Damage is what a hand edit does: stray punctuation, a cut, a lost line.
@Suite struct TOMLDifferentialTests {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    @Test func acceptsAndRefusesWhatTomllibDoes() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("toml-diff-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        var generator = SplitMix(seed: 13)
        var inputs: [String: [UInt8]] = [:]
        for name in ["dev.toml", "edgelog.toml"] {
            let original = Array(try Data(contentsOf: Self.root.appendingPathComponent("config/\(name)")))
            for index in 0..<1500 { inputs["\(name)-\(index)"] = Self.damage(original, &generator) }
        }
        for (name, bytes) in inputs { try Data(bytes).write(to: directory.appendingPathComponent(name)) }

        let verdictsFile = directory.appendingPathComponent("verdicts.txt").path
        let script = """
            import os, sys, tomllib
            directory, out = sys.argv[1], sys.argv[2]
            with open(out, "w") as verdicts:
                for name in sorted(os.listdir(directory)):
                    if name == "verdicts.txt": continue
                    try:
                        tomllib.loads(open(os.path.join(directory, name), "rb").read().decode("utf-8"))
                        verdicts.write(name + " ok\\n")
                    except Exception:
                        verdicts.write(name + " error\\n")
            """
        let python = Process()
        python.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        python.arguments = ["python3", "-c", script, directory.path, verdictsFile]
        python.standardOutput = FileHandle.nullDevice
        python.standardError = FileHandle.nullDevice
        try python.run()
        python.waitUntilExit()
        try #require(python.terminationStatus == 0)

        var disagreements: [String] = []
        var refused = 0
        for line in try String(contentsOfFile: verdictsFile, encoding: .utf8).split(separator: "\n") {
            let parts = line.split(separator: " ")
            let name = String(parts[0])
            let tomllibAccepts = parts[1] == "ok"
            let accepts: Bool
            do {
                _ = try TOMLParser.parse(bytes: inputs[name]!)
                accepts = true
            } catch {
                accepts = false
                refused += 1
            }
            if accepts != tomllibAccepts {
                disagreements.append("\(name): tomllib \(tomllibAccepts ? "accepts" : "refuses"), edgelog \(accepts ? "accepts" : "refuses"): "
                    + String(decoding: inputs[name]!, as: UTF8.self).debugDescription.prefix(300))
            }
        }
        #expect(disagreements.isEmpty, "\(disagreements.count) disagreements, first: \(disagreements.prefix(3))")
        // Both outcomes are exercised, or the comparison proves little.
        #expect(refused > 500 && refused < inputs.count - 500, "\(refused) of \(inputs.count) refused")
    }

    /// One to three edits of the kinds a hand edit makes.
    static func damage(_ original: [UInt8], _ generator: inout SplitMix) -> [UInt8] {
        var bytes = original
        let punctuation = Array("[]{}\"'=.,#\\\n-+:_ 0x".utf8)
        for _ in 0..<(1 + generator.next(3)) {
            let position = generator.next(bytes.count + 1)
            switch generator.next(4) {
            case 0, 1: bytes.insert(punctuation[generator.next(punctuation.count)], at: position)
            case 2: bytes.removeSubrange(position..<min(bytes.count, position + 1 + generator.next(8)))
            default: bytes.removeSubrange(position...)
            }
        }
        return bytes
    }
}

/// A small seeded generator, so that a failure can be replayed.
struct SplitMix {
    var state: UInt64
    init(seed: UInt64) { state = seed }

    mutating func next(_ bound: Int) -> Int {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return Int((z ^ (z >> 31)) % UInt64(max(bound, 1)))
    }
}
