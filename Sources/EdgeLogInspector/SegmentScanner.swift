public import EdgeLogStorage
import NIOCore

/// Walks the batches of one segment file front to back, reading `LogInspector.chunkBytes` at a
/// time. It stops at the first framing it cannot follow, a length below a batch header or past
/// the end of the file, because the next batch's position is then unknown.
struct SegmentScanner {
    let file: LogFile
    let fileName: String
    let size: Int64
    private(set) var position: Int64 = 0
    private var chunk = ByteBuffer()
    private var chunkStart: Int64 = 0

    enum Step {
        /// A batch framed by its length: `bytes` holds exactly its `length + 12` bytes.
        case batch(position: Int64, bytes: ByteBuffer)
        case end
        /// Framing lost at `position`; the rest of the file is unscanned.
        case stop(LogProblem)
    }

    init(file: LogFile, fileName: String) throws(StorageError) {
        self.file = file
        self.fileName = fileName
        self.size = try file.size()
    }

    func problem(_ kind: LogProblem.Kind, _ message: String) -> LogProblem {
        LogProblem(file: fileName, position: position, kind: kind, message: message)
    }

    mutating func next() throws(StorageError) -> Step {
        let remaining = size - position
        guard remaining > 0 else { return .end }
        let overhead = RecordBatch.Layout.logOverhead
        guard remaining >= Int64(overhead), let prefix = try bytes(at: position, length: overhead) else {
            return .stop(
                problem(
                    .tornBatchHeader,
                    "torn batch header: \(remaining) bytes at the end of the file (\(size) bytes) are fewer than a batch's \(overhead)-byte offset and length"))
        }
        let length = prefix.getInteger(at: prefix.readerIndex + RecordBatch.Layout.batchLength, as: Int32.self)!
        let frame = Int64(length) + Int64(overhead)
        guard frame >= Int64(RecordBatch.Layout.headerSize) else {
            return .stop(
                problem(
                    .invalidBatchLength,
                    "batch length \(length) is shorter than a batch header (\(RecordBatch.Layout.headerSize - overhead) bytes after the length field); the \(remaining) bytes from here to the end of the file cannot be read as batches"))
        }
        guard frame <= remaining else {
            return .stop(
                problem(
                    .batchPastEndOfFile,
                    "batch length \(length) points past the end of the file: the batch would end at byte \(position + frame), but the file ends at byte \(size), \(remaining) bytes after the batch's start (a torn write if this is the last batch)"))
        }
        guard let batch = try bytes(at: position, length: Int(frame)) else {
            return .stop(problem(.unreadableFile, "the file shrank below byte \(position + frame) while it was read"))
        }
        let start = position
        position += frame
        return .batch(position: start, bytes: batch)
    }

    /// `length` bytes at `position`, from the current chunk or a new one; nil when the file has
    /// fewer. A new chunk gets new storage, because batches handed out may still hold slices of
    /// the old one.
    private mutating func bytes(at position: Int64, length: Int) throws(StorageError) -> ByteBuffer? {
        if position >= chunkStart, position - chunkStart + Int64(length) <= Int64(chunk.readableBytes) {
            return chunk.getSlice(at: chunk.readerIndex + Int(position - chunkStart), length: length)
        }
        chunk = ByteBuffer()
        chunkStart = position
        let want = min(Int64(max(LogInspector.chunkBytes, length)), size - position)
        try file.read(at: position, length: Int(want), into: &chunk)
        guard chunk.readableBytes >= length else { return nil }
        return chunk.getSlice(at: chunk.readerIndex, length: length)
    }
}
