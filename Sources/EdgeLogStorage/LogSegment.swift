public import NIOCore
import Synchronization

/// One segment of a partition: `<base offset, 20 digits>.log` holding whole record batches
/// back to back, with its sparse `.index` (offset -> position) and `.timeindex`
/// (timestamp -> offset) beside it, as in Kafka's LogSegment.
///
/// An index entry is made at the start of a batch once `indexIntervalBytes` have been written
/// since the previous entry, so a lookup scans at most that many bytes of batch headers. The
/// index files are hints: a crash may leave them behind or ahead of the log, so recovery
/// rebuilds them for every byte it scans, and a loaded index that fails its sanity check is
/// rebuilt from the log.
///
/// Thread safety: one writer (the partition's appender) calls `append`, `recover`, `truncate`
/// and `finishWrites`; any thread may read. Readers pass a `limit` (the partition's committed
/// end) so they never see bytes that are not yet acknowledged.
public final class LogSegment: @unchecked Sendable {
    public let baseOffset: Int64
    public let logPath: String
    let log: LogFile
    let indexIntervalBytes: Int

    /// Internal (not private) for the readers in `LogSegment+Reading.swift`; only the
    /// writer's methods in this file change it.
    struct State {
        var sizeBytes: Int64 = 0
        var nextOffset: Int64
        var maxTimestamp: Int64 = -1
        var offsetEntries: [OffsetIndexEntry] = []
        var timeEntries: [TimeIndexEntry] = []
        /// Wall-clock time the segment was created, or its file's mtime when it was loaded.
        var rollTimestampMs: Int64
        /// Wall-clock time of the last append (file mtime when loaded).
        var lastModifiedMs: Int64
    }

    let state: Mutex<State>

    // Writer-only.
    private var offsetIndex: IndexFile<OffsetIndexEntry>
    private var timeIndex: IndexFile<TimeIndexEntry>
    private var bytesSinceIndexEntry = 0

    public static func fileName(baseOffset: Int64, suffix: String) -> String {
        let digits = String(baseOffset)
        return String(repeating: "0", count: max(0, 20 - digits.count)) + digits + suffix
    }

    /// The base offset encoded in a segment file name, or nil when it is not one.
    public static func baseOffset(fromFileName name: String, suffix: String = ".log") -> Int64? {
        guard name.hasSuffix(suffix) else { return nil }
        let stem = name.dropLast(suffix.count)
        guard stem.count == 20, stem.allSatisfy(\.isASCII), let value = Int64(stem), value >= 0 else { return nil }
        return value
    }

    /// Opens or creates the segment files. The segment starts empty; `load` or `recover`
    /// establishes its contents.
    init(directory: String, baseOffset: Int64, indexIntervalBytes: Int, nowMs: Int64) throws(StorageError) {
        self.baseOffset = baseOffset
        self.logPath = directory + "/" + Self.fileName(baseOffset: baseOffset, suffix: ".log")
        self.log = try LogFile(path: logPath, create: true)
        self.indexIntervalBytes = indexIntervalBytes
        self.offsetIndex = try IndexFile(
            path: directory + "/" + Self.fileName(baseOffset: baseOffset, suffix: ".index"), baseOffset: baseOffset)
        self.timeIndex = try IndexFile(
            path: directory + "/" + Self.fileName(baseOffset: baseOffset, suffix: ".timeindex"), baseOffset: baseOffset)
        self.state = Mutex(State(nextOffset: baseOffset, rollTimestampMs: nowMs, lastModifiedMs: nowMs))
    }

    public var indexPath: String { offsetIndex.file.path }
    public var timeIndexPath: String { timeIndex.file.path }

    /// Bytes of whole batches in the segment.
    public var sizeBytes: Int64 { state.withLock { $0.sizeBytes } }
    /// The offset after the last batch.
    public var nextOffset: Int64 { state.withLock { $0.nextOffset } }
    /// Largest record timestamp, -1 when empty.
    public var maxTimestamp: Int64 { state.withLock { $0.maxTimestamp } }
    /// What the segment's age is measured from for rolling: its creation by this process, or
    /// its file's modification time when it was opened from disk. (Not record timestamps: an
    /// edge device with a wrong clock must not make every batch roll a segment.)
    public var rollTimestampMs: Int64 { state.withLock { $0.rollTimestampMs } }
    /// For retention by age: the later of the newest record timestamp and the last write, so
    /// that records stamped by a device with a clock far behind are not deleted on arrival.
    public var retentionTimestampMs: Int64 { state.withLock { max($0.maxTimestamp, $0.lastModifiedMs) } }
    public var indexEntryCount: Int { state.withLock { $0.offsetEntries.count } }

    // MARK: Opening

    /// Loads a segment that lies below the recovery point: its batches are trusted, its indexes
    /// are read from disk and sanity-checked. Returns false when an index is missing or
    /// inconsistent, in which case the caller runs `recover(from: 0, …)` to rebuild it.
    func load(nextOffset: Int64) throws(StorageError) -> Bool {
        let size = try log.size()
        let offsetEntries = try offsetIndex.load()
        let timeEntries = try timeIndex.load()
        let modified = try log.modificationTimeMs()
        state.withLock {
            $0.sizeBytes = size
            $0.nextOffset = nextOffset
            $0.offsetEntries = offsetEntries
            $0.timeEntries = timeEntries
            $0.maxTimestamp = timeEntries.last?.timestamp ?? -1
            $0.rollTimestampMs = modified
            $0.lastModifiedMs = modified
        }
        guard size == 0 || (!offsetEntries.isEmpty || size < indexIntervalBytes) else { return false }
        guard size == 0 || !timeEntries.isEmpty else { return false }
        return try indexesAreSane(size: size, nextOffset: nextOffset, offsets: offsetEntries, times: timeEntries)
    }

    private func indexesAreSane(
        size: Int64, nextOffset: Int64, offsets: [OffsetIndexEntry], times: [TimeIndexEntry]
    ) throws(StorageError) -> Bool {
        var previous: OffsetIndexEntry? = nil
        for entry in offsets {
            guard entry.offset >= baseOffset, entry.offset < nextOffset, entry.position < size else { return false }
            if let previous, entry.offset <= previous.offset || entry.position <= previous.position { return false }
            previous = entry
        }
        var previousTime: TimeIndexEntry? = nil
        for entry in times {
            guard entry.offset >= baseOffset - 1, entry.offset < nextOffset else { return false }
            if let previousTime, entry.timestamp < previousTime.timestamp || entry.offset < previousTime.offset {
                return false
            }
            previousTime = entry
        }
        // The last entry must point at the start of a batch with that base offset.
        if let last = offsets.last {
            guard let header = try readHeader(at: last.position, limit: size), header.baseOffset == last.offset else {
                return false
            }
        }
        return true
    }

    /// What recovery found in one segment.
    public struct RecoveryOutcome: Sendable, Equatable {
        /// Bytes of valid batches; the log was truncated to this size.
        public var validBytes: Int64
        public var nextOffset: Int64
        public var batchesScanned: Int
        /// Bytes cut off the end, and why; nil when the whole scanned range was valid.
        public var truncatedBytes: Int64
        public var problem: String?
    }

    /// Scans from `position` (a batch boundary whose batch must have base offset
    /// `expectedOffset`) to the end of the file, checking each batch's framing, CRC and offset;
    /// truncates the log at the first bad or torn batch; rebuilds the index entries of the
    /// scanned range. Entries and state below `position` are kept (loaded from the index files).
    func recover(
        from position: Int64, expectedOffset: Int64, knownMaxTimestamp: Int64 = -1, maxBatchBytes: Int
    ) throws(StorageError) -> RecoveryOutcome {
        let fileSize = try log.size()
        var offsets = position > 0 ? try offsetIndex.load().filter { $0.position < position } : []
        var times = position > 0 ? try timeIndex.load().filter { $0.offset < expectedOffset } : []
        var maxTimestamp = position > 0 ? max(times.last?.timestamp ?? -1, knownMaxTimestamp) : -1
        var scanned = 0
        var validEnd = position
        var nextOffset = expectedOffset
        var problem: String? = nil
        bytesSinceIndexEntry = 0
        var chunk = ByteBuffer()
        let chunkBytes = 4 * 1024 * 1024
        var chunkStart = position

        // Makes `chunk` cover [validEnd, validEnd + length); false when the file has fewer bytes.
        func cover(_ length: Int) throws(StorageError) -> Bool {
            if validEnd >= chunkStart, Int(validEnd - chunkStart) + length <= chunk.readableBytes { return true }
            chunk.clear()
            chunkStart = validEnd
            try log.read(at: validEnd, length: max(chunkBytes, length), into: &chunk)
            return chunk.readableBytes >= length
        }

        scan: while validEnd < fileSize {
            guard fileSize - validEnd >= Int64(RecordBatch.Layout.logOverhead),
                try cover(RecordBatch.Layout.logOverhead)
            else {
                problem = "torn batch header: \(fileSize - validEnd) bytes at the end of the file"
                break scan
            }
            let frame = RecordBatch.frameSize(in: chunk, at: chunk.readerIndex + Int(validEnd - chunkStart))!
            guard frame >= RecordBatch.Layout.headerSize, frame <= maxBatchBytes + RecordBatch.Layout.headerSize else {
                problem = "batch length \(frame - RecordBatch.Layout.logOverhead) is impossible"
                break scan
            }
            guard validEnd + Int64(frame) <= fileSize, try cover(frame) else {
                problem = "torn batch: \(frame) bytes long, \(fileSize - validEnd) left in the file"
                break scan
            }
            let offsetInChunk = Int(validEnd - chunkStart)
            let slice = chunk.getSlice(at: chunk.readerIndex + offsetInChunk, length: frame)!
            let batch: RecordBatch
            do {
                batch = try RecordBatch(validating: slice)
                try batch.verifyChecksum()
            } catch {
                problem = error.description
                break scan
            }
            guard batch.baseOffset == nextOffset, batch.lastOffsetDelta >= 0 else {
                problem = "batch base offset \(batch.baseOffset) where \(nextOffset) was expected"
                break scan
            }
            indexBatch(
                baseOffset: batch.baseOffset, lastOffset: batch.lastOffset, maxTimestamp: batch.maxTimestamp,
                position: validEnd, size: frame, offsets: &offsets, times: &times, maxTimestampSoFar: &maxTimestamp)
            nextOffset = batch.nextOffset
            validEnd += Int64(frame)
            scanned += 1
        }

        if validEnd < fileSize {
            try log.truncate(to: validEnd)
        }
        let modified = try log.modificationTimeMs()
        try offsetIndex.rewrite(offsets)
        try timeIndex.rewrite(times)
        state.withLock {
            $0.sizeBytes = validEnd
            $0.nextOffset = nextOffset
            $0.maxTimestamp = maxTimestamp
            $0.offsetEntries = offsets
            $0.timeEntries = times
            $0.rollTimestampMs = modified
            $0.lastModifiedMs = modified
        }
        return RecoveryOutcome(
            validBytes: validEnd, nextOffset: nextOffset, batchesScanned: scanned,
            truncatedBytes: fileSize - validEnd, problem: validEnd < fileSize ? problem : nil)
    }

    // MARK: Writing (the partition's writer only)

    /// A batch inside a buffer handed to `append`.
    struct WrittenBatch {
        var baseOffset: Int64
        var lastOffset: Int64
        var maxTimestamp: Int64
        /// Position within the appended bytes.
        var relativePosition: Int
        var size: Int
    }

    private var pendingOffsetEntries: [OffsetIndexEntry] = []
    private var pendingTimeEntries: [TimeIndexEntry] = []

    /// Appends whole batches at the end of the segment and indexes them. On a failed write the
    /// file is cut back to its previous size before the error is rethrown.
    func append(_ bytes: ByteBuffer, batches: [WrittenBatch]) throws(StorageError) {
        let (position, maxTimestampBefore, lastTimeEntry) = state.withLock {
            ($0.sizeBytes, $0.maxTimestamp, $0.timeEntries.last)
        }
        do {
            try log.write(bytes, at: position)
        } catch {
            try? log.truncate(to: position)
            throw error
        }
        pendingOffsetEntries.removeAll(keepingCapacity: true)
        pendingTimeEntries.removeAll(keepingCapacity: true)
        var maxTimestamp = maxTimestampBefore
        var lastTime = lastTimeEntry
        for batch in batches {
            let batchPosition = position + Int64(batch.relativePosition)
            if bytesSinceIndexEntry >= indexIntervalBytes {
                pendingOffsetEntries.append(OffsetIndexEntry(offset: batch.baseOffset, position: batchPosition))
                if maxTimestamp > (lastTime?.timestamp ?? -1) {
                    let entry = TimeIndexEntry(timestamp: maxTimestamp, offset: batch.baseOffset - 1)
                    pendingTimeEntries.append(entry)
                    lastTime = entry
                }
                bytesSinceIndexEntry = 0
            }
            bytesSinceIndexEntry += batch.size
            maxTimestamp = max(maxTimestamp, batch.maxTimestamp)
        }
        // Index files are hints that recovery rebuilds, so a failure here does not lose data;
        // it is still reported so that a failing disk is noticed.
        try offsetIndex.append(pendingOffsetEntries[...])
        try timeIndex.append(pendingTimeEntries[...])
        let nextOffset = batches.last.map { $0.lastOffset + 1 }
        let now = wallClockMs()
        state.withLock {
            $0.sizeBytes = position + Int64(bytes.readableBytes)
            if let nextOffset { $0.nextOffset = nextOffset }
            $0.maxTimestamp = maxTimestamp
            $0.offsetEntries.append(contentsOf: pendingOffsetEntries)
            $0.timeEntries.append(contentsOf: pendingTimeEntries)
            $0.lastModifiedMs = now
        }
    }

    private func indexBatch(
        baseOffset: Int64, lastOffset: Int64, maxTimestamp batchMax: Int64, position: Int64, size: Int,
        offsets: inout [OffsetIndexEntry], times: inout [TimeIndexEntry], maxTimestampSoFar: inout Int64
    ) {
        if bytesSinceIndexEntry >= indexIntervalBytes {
            offsets.append(OffsetIndexEntry(offset: baseOffset, position: position))
            if maxTimestampSoFar > (times.last?.timestamp ?? -1) {
                times.append(TimeIndexEntry(timestamp: maxTimestampSoFar, offset: baseOffset - 1))
            }
            bytesSinceIndexEntry = 0
        }
        bytesSinceIndexEntry += size
        maxTimestampSoFar = max(maxTimestampSoFar, batchMax)
    }

    /// Seals the segment: a final time index entry for its largest timestamp, then data and
    /// indexes flushed. Called when the segment rolls and on clean shutdown.
    func finishWrites() throws(StorageError) {
        let (maxTimestamp, nextOffset, last) = state.withLock { ($0.maxTimestamp, $0.nextOffset, $0.timeEntries.last) }
        if maxTimestamp > (last?.timestamp ?? -1) {
            let entry = TimeIndexEntry(timestamp: maxTimestamp, offset: nextOffset - 1)
            try timeIndex.append([entry][...])
            state.withLock { $0.timeEntries.append(entry) }
        }
        try log.sync()
        try offsetIndex.file.sync()
        try timeIndex.file.sync()
    }

    /// Flushes the log file's data.
    func sync() throws(StorageError) {
        try log.sync()
    }
}
