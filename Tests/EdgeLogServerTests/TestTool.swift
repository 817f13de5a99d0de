import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// C programs of the test tree (Tests/...) compiled with the system's `cc` once per test run:
/// the power-cut library, the windowed MQTT publisher.
enum TestTool {
    private static let built = NSLock()
    nonisolated(unsafe) private static var paths: [String: String] = [:]

    /// Compiles `source` (relative to the repository) with `arguments` (`-shared -fPIC` for a
    /// library) and `libraries`; returns the output's path.
    static func compile(_ source: String, arguments: [String] = [], libraries: [String]) throws -> String {
        built.lock()
        defer { built.unlock() }
        if let path = paths[source] { return path }
        let name = URL(fileURLWithPath: source).deletingPathExtension().lastPathComponent
        let output = NSTemporaryDirectory() + "edgelog-\(name)-\(getpid())" + (arguments.contains("-shared") ? ".so" : "")
        // posix_spawn and waitpid rather than Foundation's Process, with the errors in a file:
        // a child spawned meanwhile by a test running in parallel (mosquitto, the daemon) would
        // inherit a pipe's write end and keep it open, and Process.waitUntilExit was seen to
        // hang when every cooperative thread was blocked.
        let errorsPath = output + ".errors"
        defer { try? FileManager.default.removeItem(atPath: errorsPath) }
        let command = ["/usr/bin/env", "cc", "-O2"] + arguments + ["-o", output, DaemonProcess.repository + "/" + source] + libraries
        let status = try spawnAndWait(command, stdoutPath: "/dev/null", stderrPath: errorsPath)
        guard status == 0 else {
            let errors = (try? String(contentsOfFile: errorsPath, encoding: .utf8)) ?? ""
            throw DaemonProcess.Failure("cc \(source) failed (\(status)): \(errors)")
        }
        paths[source] = output
        return output
    }

    /// Runs a program to completion with its input and outputs in files, not pipes: a child
    /// that a test running in parallel spawns meanwhile (mosquitto, a daemon) would inherit a
    /// pipe's end and keep it open, so a read to the end of the output, or the program's wait
    /// for the end of its input, would last as long as that child. Returns the exit status
    /// (128 + the signal when killed, as a shell reports it) and the outputs.
    static func run(_ executable: String, _ arguments: [String], stdin: String? = nil) throws -> (status: Int32, stdout: String, stderr: String) {
        let base = NSTemporaryDirectory() + "edgelog-run-\(UUID().uuidString.prefix(8))"
        let (inputPath, outputPath, errorsPath) = (base + ".in", base + ".out", base + ".err")
        defer { for path in [inputPath, outputPath, errorsPath] { try? FileManager.default.removeItem(atPath: path) } }
        try Data((stdin ?? "").utf8).write(to: URL(fileURLWithPath: inputPath))
        let status = try spawnAndWait([executable] + arguments, stdinPath: inputPath, stdoutPath: outputPath, stderrPath: errorsPath)
        let output = (try? String(contentsOfFile: outputPath, encoding: .utf8)) ?? ""
        let errors = (try? String(contentsOfFile: errorsPath, encoding: .utf8)) ?? ""
        let exit = status & 0x7F == 0 ? (status >> 8) & 0xFF : 128 + (status & 0x7F)
        return (exit, output, errors)
    }

    /// Runs `command` (a path and its arguments) with its standard files opened from paths;
    /// returns its wait status.
    private static func spawnAndWait(
        _ command: [String], stdinPath: String = "/dev/null", stdoutPath: String, stderrPath: String
    ) throws -> Int32 {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, stdinPath, O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, stdoutPath, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        posix_spawn_file_actions_addopen(&actions, 2, stderrPath, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        var arguments: [UnsafeMutablePointer<CChar>?] = command.map { strdup($0) } + [nil]
        defer { for argument in arguments { free(argument) } }
        var child = pid_t()
        let rc = posix_spawn(&child, command[0], &actions, nil, &arguments, environ)
        guard rc == 0 else { throw DaemonProcess.Failure("posix_spawn \(command[0]): \(String(cString: strerror(rc)))") }
        var status: Int32 = 0
        while waitpid(child, &status, 0) < 0 && errno == EINTR {}
        return status
    }

    /// Tests/Interop/mqtt_publish.c: QoS 1 with a window of 1000 and an optional steady rate.
    static func mqttPublisher() throws -> String {
        try compile("Tests/Interop/mqtt_publish.c", libraries: ["-lmosquitto", "-lpthread"])
    }

    /// Tests/Faults/diskfault.c, for LD_PRELOAD: a read-only data directory, failing fsyncs.
    static func diskFaultLibrary() throws -> String {
        try compile("Tests/Faults/diskfault.c", arguments: ["-shared", "-fPIC"], libraries: ["-ldl", "-lpthread"])
    }

    /// Tests/PowerCut/powercut.c, for LD_PRELOAD.
    static func powerCutLibrary() throws -> String {
        try compile("Tests/PowerCut/powercut.c", arguments: ["-shared", "-fPIC"], libraries: ["-ldl", "-lpthread"])
    }
}
