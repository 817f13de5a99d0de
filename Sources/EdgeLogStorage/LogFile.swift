public import NIOCore

/// An open file of the log (segment, index) with positional reads and writes.
///
/// Thread safety: `read` may be called from any thread at any time (pread is positional and the
/// descriptor lives as long as the object). `write`, `truncate` and `sync` are called by the
/// partition's single writer only. The descriptor closes when the last reference goes away, so
/// a reader holding a segment of a file that retention just unlinked still reads valid bytes.
public final class LogFile: @unchecked Sendable {
    public let path: String
    let descriptor: Int32

    /// Opens (and with `create`, creates) the file for reading and writing.
    public init(path: String, create: Bool) throws(StorageError) {
        let flags = O_RDWR | O_CLOEXEC | (create ? O_CREAT : 0)
        let fd = open(path, flags, 0o644)
        guard fd >= 0 else { throw .io(operation: "open", path: path, errno: errno) }
        self.path = path
        self.descriptor = fd
    }

    /// Opens an existing file for reading only (O_RDONLY), for tools that inspect a log without
    /// changing it; `write` and `truncate` on it fail with EBADF.
    public init(readOnlyPath path: String) throws(StorageError) {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw .io(operation: "open", path: path, errno: errno) }
        self.path = path
        self.descriptor = fd
    }

    deinit {
        close(descriptor)
    }

    /// The file's current size from the file system.
    public func size() throws(StorageError) -> Int64 {
        var info = stat()
        guard fstat(descriptor, &info) == 0 else { throw .io(operation: "fstat", path: path, errno: errno) }
        return Int64(info.st_size)
    }

    /// The file's modification time in milliseconds since the epoch.
    public func modificationTimeMs() throws(StorageError) -> Int64 {
        var info = stat()
        guard fstat(descriptor, &info) == 0 else { throw .io(operation: "fstat", path: path, errno: errno) }
        return Int64(info.st_mtim.tv_sec) * 1000 + Int64(info.st_mtim.tv_nsec) / 1_000_000
    }

    /// Writes all readable bytes of `buffer` at `position`. ENOSPC and EDQUOT become `.diskFull`.
    public func write(_ buffer: ByteBuffer, at position: Int64) throws(StorageError) {
        var failure: Int32 = FaultInjection.failure(for: .write, path: path) ?? 0
        if failure == 0 {
            buffer.withUnsafeReadableBytes { bytes in
            var done = 0
            while done < bytes.count {
                let result = pwrite(descriptor, bytes.baseAddress! + done, bytes.count - done, off_t(position) + off_t(done))
                if result < 0 {
                    if errno == EINTR { continue }
                    failure = errno
                    return
                }
                done += result
            }
            }
        }
        if failure == ENOSPC || failure == EDQUOT { throw .diskFull(path: path) }
        if failure != 0 { throw .io(operation: "write", path: path, errno: failure) }
    }

    /// Reads up to `length` bytes at `position`; fewer only at the end of the file.
    public func read(at position: Int64, length: Int, allocator: ByteBufferAllocator = .init()) throws(StorageError) -> ByteBuffer {
        var buffer = allocator.buffer(capacity: length)
        try read(at: position, length: length, into: &buffer)
        return buffer
    }

    /// Appends up to `length` bytes read at `position` to `buffer`.
    public func read(at position: Int64, length: Int, into buffer: inout ByteBuffer) throws(StorageError) {
        guard length > 0 else { return }
        var failure: Int32 = 0
        buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: length) { bytes in
            var done = 0
            while done < length {
                let result = pread(descriptor, bytes.baseAddress! + done, length - done, off_t(position) + off_t(done))
                if result < 0 {
                    if errno == EINTR { continue }
                    failure = errno
                    break
                }
                if result == 0 { break }
                done += result
            }
            return done
        }
        if failure != 0 { throw .io(operation: "read", path: path, errno: failure) }
    }

    /// A new descriptor of this file (dup), owned by the caller: it stays valid after this
    /// object closes its own.
    public func duplicateDescriptor() throws(StorageError) -> Int32 {
        let copy = fcntl(descriptor, F_DUPFD_CLOEXEC, 0)
        guard copy >= 0 else { throw .io(operation: "dup", path: path, errno: errno) }
        return copy
    }

    /// Flushes the file's data to the device (fdatasync: the size is metadata it does include).
    public func sync() throws(StorageError) {
        if let injected = FaultInjection.failure(for: .sync, path: path) {
            throw .io(operation: "fdatasync", path: path, errno: injected)
        }
        while fdatasync(descriptor) != 0 {
            if errno == EINTR { continue }
            throw .io(operation: "fdatasync", path: path, errno: errno)
        }
    }

    public func truncate(to size: Int64) throws(StorageError) {
        while ftruncate(descriptor, off_t(size)) != 0 {
            if errno == EINTR { continue }
            throw .io(operation: "ftruncate", path: path, errno: errno)
        }
    }
}

/// File system operations on paths.
public enum FileSystem {
    public static func exists(_ path: String) -> Bool {
        access(path, F_OK) == 0
    }

    public static func isDirectory(_ path: String) -> Bool {
        var info = stat()
        return stat(path, &info) == 0 && (info.st_mode & S_IFMT) == S_IFDIR
    }

    public static func createDirectory(_ path: String) throws(StorageError) {
        if mkdir(path, 0o755) != 0 && errno != EEXIST {
            throw .io(operation: "mkdir", path: path, errno: errno)
        }
    }

    /// Names in a directory, without "." and "..".
    public static func list(_ path: String) throws(StorageError) -> [String] {
        guard let directory = opendir(path) else { throw .io(operation: "opendir", path: path, errno: errno) }
        defer { closedir(directory) }
        var names: [String] = []
        while let entry = readdir(directory) {
            let name = withUnsafePointer(to: entry.pointee.d_name) {
                $0.withMemoryRebound(to: CChar.self, capacity: 256) { String(cString: $0) }
            }
            if name != "." && name != ".." { names.append(name) }
        }
        return names
    }

    public static func size(_ path: String) -> Int64? {
        var info = stat()
        guard stat(path, &info) == 0 else { return nil }
        return Int64(info.st_size)
    }

    public static func remove(_ path: String) throws(StorageError) {
        if unlink(path) != 0 && errno != ENOENT { throw .io(operation: "unlink", path: path, errno: errno) }
    }

    public static func removeDirectory(_ path: String) throws(StorageError) {
        for name in try list(path) {
            let child = path + "/" + name
            if isDirectory(child) { try removeDirectory(child) } else { try remove(child) }
        }
        if rmdir(path) != 0 && errno != ENOENT { throw .io(operation: "rmdir", path: path, errno: errno) }
    }

    public static func rename(_ from: String, to: String) throws(StorageError) {
        if Glibc.rename(from, to) != 0 { throw .io(operation: "rename", path: from + " -> " + to, errno: errno) }
    }

    /// fsyncs a directory so that creations, renames and unlinks in it are durable.
    public static func syncDirectory(_ path: String) throws(StorageError) {
        let fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard fd >= 0 else { throw .io(operation: "open", path: path, errno: errno) }
        defer { close(fd) }
        guard fsync(fd) == 0 else { throw .io(operation: "fsync", path: path, errno: errno) }
    }

    /// Writes `bytes` to `path` atomically: a temp file, fsync, rename over, fsync the directory.
    /// A crash leaves either the old content or the new, never a mix.
    public static func writeAtomically(_ bytes: ByteBuffer, to path: String) throws(StorageError) {
        let temporary = path + ".tmp"
        do {
            let file = try LogFile(path: temporary, create: true)
            try file.truncate(to: 0)
            try file.write(bytes, at: 0)
            while fsync(file.descriptor) != 0 {
                if errno == EINTR { continue }
                throw StorageError.io(operation: "fsync", path: temporary, errno: errno)
            }
        }
        try rename(temporary, to: path)
        try syncDirectory(directoryName(of: path))
    }

    public static func directoryName(of path: String) -> String {
        guard let slash = path.lastIndex(of: "/") else { return "." }
        return slash == path.startIndex ? "/" : String(path[..<slash])
    }

    /// Bytes used by regular files under `path`, recursively.
    public static func usedBytes(under path: String) -> Int64 {
        guard let names = try? list(path) else { return 0 }
        var total: Int64 = 0
        for name in names {
            let child = path + "/" + name
            if isDirectory(child) { total += usedBytes(under: child) } else { total += size(child) ?? 0 }
        }
        return total
    }
}
