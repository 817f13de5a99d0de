public import NIOCore

/// Whole stored batches left where they are: a byte range of a segment file, for readers that
/// send it on without looking at it (a Kafka fetch served with sendfile).
///
/// Holding a span keeps the segment's descriptor open, so the bytes stay readable even after
/// retention unlinks the file; a reader that hands the range to another owner (an event loop's
/// sendfile) takes its own descriptor with ``duplicateDescriptor()``.
public struct StoredSpan: Sendable {
    public let file: LogFile
    public let position: Int64
    public let length: Int

    /// A new descriptor of the segment file, owned (and closed) by the caller.
    public func duplicateDescriptor() throws(StorageError) -> Int32 {
        try file.duplicateDescriptor()
    }

    /// The span's bytes, read now (for a TLS connection, where sendfile cannot be used).
    public func read(allocator: ByteBufferAllocator = .init()) throws(StorageError) -> ByteBuffer {
        let bytes = try file.read(at: position, length: length, allocator: allocator)
        guard bytes.readableBytes == length else {
            throw .corruptBatch(reason: "\(file.path) ends inside the stored span \(position)+\(length)")
        }
        return bytes
    }
}
