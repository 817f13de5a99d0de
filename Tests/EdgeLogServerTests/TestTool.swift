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
        let status = try spawnAndWait(command, errorsPath: errorsPath)
        guard status == 0 else {
            let errors = (try? String(contentsOfFile: errorsPath, encoding: .utf8)) ?? ""
            throw DaemonProcess.Failure("cc \(source) failed (\(status)): \(errors)")
        }
        paths[source] = output
        return output
    }

    /// Runs `command` (a path and its arguments) with stdout to /dev/null and stderr to
    /// `errorsPath`; returns its wait status.
    private static func spawnAndWait(_ command: [String], errorsPath: String) throws -> Int32 {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 2, errorsPath, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
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

    /// Tests/PowerCut/powercut.c, for LD_PRELOAD.
    static func powerCutLibrary() throws -> String {
        try compile("Tests/PowerCut/powercut.c", arguments: ["-shared", "-fPIC"], libraries: ["-ldl", "-lpthread"])
    }
}
