import NIOCore

/// The file behind one sparse index of a segment. Entries live in memory (8 or 12 bytes per
/// 4 KiB of log by default) and are appended to the file as they are made; the file is read
/// back when a segment is opened and rebuilt from the log whenever it fails its sanity check.
///
/// Thread safety: owned by the partition's writer; readers see entries through the segment's
/// lock, never through this type.
struct IndexFile<Entry: IndexEntry> {
    let file: LogFile
    let baseOffset: Int64
    private var writtenCount = 0
    private var scratch = ByteBuffer()

    init(path: String, baseOffset: Int64) throws(StorageError) {
        self.file = try LogFile(path: path, create: true)
        self.baseOffset = baseOffset
    }

    /// Entries stored in the file. A trailing partial entry (a torn write) is dropped.
    mutating func load() throws(StorageError) -> [Entry] {
        let size = try file.size()
        let count = Int(size) / Entry.size
        let bytes = try file.read(at: 0, length: count * Entry.size)
        var entries: [Entry] = []
        entries.reserveCapacity(count)
        for index in 0..<count {
            guard let entry = Entry(from: bytes, at: index * Entry.size, baseOffset: baseOffset) else { break }
            entries.append(entry)
        }
        writtenCount = entries.count
        if Int64(count * Entry.size) != size { try file.truncate(to: Int64(count * Entry.size)) }
        return entries
    }

    /// Appends entries made after the ones already written.
    mutating func append(_ entries: ArraySlice<Entry>) throws(StorageError) {
        guard !entries.isEmpty else { return }
        scratch.clear()
        for entry in entries { entry.write(into: &scratch, baseOffset: baseOffset) }
        try file.write(scratch, at: Int64(writtenCount * Entry.size))
        writtenCount += entries.count
    }

    /// Replaces the whole file with `entries`.
    mutating func rewrite(_ entries: [Entry]) throws(StorageError) {
        try file.truncate(to: 0)
        writtenCount = 0
        try append(entries[...])
    }

    var count: Int { writtenCount }
}
