import EdgeLogStorage
import Foundation

/// The yardsticks each benchmark is divided by, measured in the same run.
enum References {
    /// Sequential write bandwidth of the file system under `directory`, MB/s: `dd` with 1 MiB
    /// blocks and a final fdatasync, timed from outside.
    static func ddWriteMBps(directory: String, megabytes: Int) throws -> Double {
        let path = directory + "/dd-reference.bin"
        defer { try? FileManager.default.removeItem(atPath: path) }
        let seconds = try timeProcess(
            "/bin/dd", ["if=/dev/zero", "of=\(path)", "bs=1M", "count=\(megabytes)", "conv=fdatasync", "status=none"])
        return Double(megabytes) * 1_048_576 / 1_000_000 / seconds
    }

    /// `gzip -1` throughput on `file`, MB/s of input.
    static func gzipMBps(file: String) throws -> Double {
        let bytes = Double(try FileManager.default.attributesOfItem(atPath: file)[.size] as! Int)
        let seconds = try timeProcess("/bin/sh", ["-c", "gzip -1 -c '\(file)' > /dev/null"])
        return bytes / 1_000_000 / seconds
    }

    /// Raw fsyncs per second: append 4 KiB and fdatasync, `count` times, on one file.
    static func fsyncsPerSecond(directory: String, count: Int) throws -> Double {
        let path = directory + "/fsync-reference.bin"
        defer { try? FileManager.default.removeItem(atPath: path) }
        let fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0o644)
        guard fd >= 0 else { throw BenchError("cannot create \(path)") }
        defer { close(fd) }
        let block = [UInt8](repeating: 0x5A, count: 4096)
        let start = Clock.now
        for index in 0..<count {
            _ = block.withUnsafeBytes { pwrite(fd, $0.baseAddress, 4096, off_t(index * 4096)) }
            fdatasync(fd)
        }
        return Double(count) / Clock.seconds(since: start)
    }

    static func timeProcess(_ executable: String, _ arguments: [String]) throws -> Double {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        let start = Clock.now
        try process.run()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            throw BenchError("\(executable) \(arguments.joined(separator: " ")) exited \(process.terminationStatus)")
        }
        return Clock.seconds(since: start)
    }
}

/// Monotonic time for benchmarks.
enum Clock {
    static var now: UInt64 { DispatchTime.now().uptimeNanoseconds }
    static func seconds(since start: UInt64) -> Double { Double(now - start) / 1e9 }
}

struct BenchError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}
