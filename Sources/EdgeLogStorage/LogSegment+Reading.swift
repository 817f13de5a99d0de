public import NIOCore
import Synchronization

/// Reading a segment: batch headers, positions of offsets and timestamps, and batches as
/// bytes or as a span of the file (for sendfile). Any thread; `limit` is the partition's
/// committed end, so readers never see bytes not yet acknowledged.
extension LogSegment {

    /// The fields of a batch header that reads and lookups need.
    public struct BatchHeader: Sendable, Equatable {
        public var baseOffset: Int64
        public var lastOffset: Int64
        public var maxTimestamp: Int64
        public var size: Int
    }

    /// Reads the header of the batch at `position`; nil when no whole header lies below `limit`.
    public func readHeader(at position: Int64, limit: Int64) throws(StorageError) -> BatchHeader? {
        guard position + Int64(RecordBatch.Layout.headerSize) <= limit else { return nil }
        let bytes = try log.read(at: position, length: RecordBatch.Layout.producerId)
        guard bytes.readableBytes == RecordBatch.Layout.producerId,
            let base = bytes.getInteger(at: 0, as: Int64.self),
            let length = bytes.getInteger(at: RecordBatch.Layout.batchLength, as: Int32.self),
            let delta = bytes.getInteger(at: RecordBatch.Layout.lastOffsetDelta, as: Int32.self),
            let maxTimestamp = bytes.getInteger(at: RecordBatch.Layout.maxTimestamp, as: Int64.self)
        else { return nil }
        return BatchHeader(
            baseOffset: base, lastOffset: base + Int64(delta), maxTimestamp: maxTimestamp,
            size: Int(length) + RecordBatch.Layout.logOverhead)
    }

    /// The idempotent-producer fields of the batches from the batch boundary at or below
    /// `position` to `limit`, oldest first (headers only: the records are not read).
    public func producerBatches(from position: Int64, limit: Int64) throws(StorageError) -> [ProducerBatch] {
        var at = state.withLock { entries in
            entries.offsetEntries.floorIndex(position, by: \.position).map { entries.offsetEntries[$0].position } ?? 0
        }
        var batches: [ProducerBatch] = []
        while at + Int64(RecordBatch.Layout.headerSize) <= limit {
            let bytes = try log.read(at: at, length: RecordBatch.Layout.headerSize)
            guard let batch = ProducerBatch(header: bytes) else {
                throw .corruptBatch(reason: "unreadable batch header at \(logPath):\(at)")
            }
            if batch.producerId >= 0 { batches.append(batch) }
            at += Int64(batch.size)
        }
        return batches
    }

    /// Position of the batch that holds `offset`, scanning forward from the index entry at or
    /// below it; nil when no batch below `limit` holds it.
    public func position(of offset: Int64, limit: Int64) throws(StorageError) -> Int64? {
        var position = state.withLock { $0.offsetEntries.floor(offset)?.position ?? 0 }
        while let header = try readHeader(at: position, limit: limit) {
            if header.lastOffset >= offset { return position }
            guard header.size >= RecordBatch.Layout.headerSize else {
                throw .corruptBatch(reason: "batch of \(header.size) bytes at \(logPath):\(position)")
            }
            position += Int64(header.size)
        }
        return nil
    }

    /// Whole batches from `position`: as many as fit in `maxBytes`, but always the first one
    /// whole, so that a reader makes progress on a batch larger than its limit (Kafka's KIP-74).
    public func readBatches(from position: Int64, maxBytes: Int, limit: Int64) throws(StorageError) -> ByteBuffer {
        guard position < limit else { return ByteBuffer() }
        let available = Int(limit - position)
        var buffer = try log.read(at: position, length: min(max(maxBytes, RecordBatch.Layout.logOverhead), available))
        // Trim to whole batches.
        var end = 0
        while let frame = RecordBatch.frameSize(in: buffer, at: end), frame >= RecordBatch.Layout.headerSize,
            end + frame <= buffer.readableBytes
        {
            end += frame
        }
        if end == 0 {
            guard let frame = RecordBatch.frameSize(in: buffer, at: 0),
                frame >= RecordBatch.Layout.headerSize, frame <= available
            else {
                throw .corruptBatch(reason: "no whole batch at \(logPath):\(position)")
            }
            return try log.read(at: position, length: frame)
        }
        buffer.moveWriterIndex(to: end)
        return buffer
    }

    /// Where the batches `readBatches(from:maxBytes:limit:)` would return lie in the file,
    /// found from batch headers alone: the sparse offset index skips to the last indexed batch
    /// that still fits, so at most an index interval of headers is read, never the records.
    public func locateBatches(from position: Int64, maxBytes: Int, limit: Int64) throws(StorageError) -> StoredSpan? {
        guard position < limit else { return nil }
        let wanted = position + Int64(max(maxBytes, 0))
        // The committed end is a batch boundary: everything up to it fits.
        guard wanted < limit else { return StoredSpan(file: log, position: position, length: Int(limit - position)) }
        let indexed = state.withLock { entries in
            entries.offsetEntries.floorIndex(wanted, by: \.position).map { entries.offsetEntries[$0].position }
        }
        var end = max(position, indexed ?? position)
        while let header = try readHeader(at: end, limit: limit), end + Int64(header.size) <= wanted {
            guard header.size >= RecordBatch.Layout.headerSize else {
                throw .corruptBatch(reason: "batch of \(header.size) bytes at \(logPath):\(end)")
            }
            end += Int64(header.size)
        }
        if end == position {
            // The first batch alone is larger than maxBytes: it goes whole (KIP-74).
            guard let header = try readHeader(at: position, limit: limit),
                header.size >= RecordBatch.Layout.headerSize, position + Int64(header.size) <= limit
            else {
                throw .corruptBatch(reason: "no whole batch at \(logPath):\(position)")
            }
            end = position + Int64(header.size)
        }
        return StoredSpan(file: log, position: position, length: Int(end - position))
    }

    /// The first offset whose record timestamp is at least `timestamp`, or nil when every
    /// record below `limit` is older.
    public func offset(forTimestamp timestamp: Int64, limit: Int64, compressor: BatchCompressor) throws(StorageError) -> Int64? {
        let startOffset = state.withLock { $0.timeEntries.lastBelow(timestamp).map { $0.offset + 1 } ?? baseOffset }
        var position = try self.position(of: startOffset, limit: limit) ?? limit
        while let header = try readHeader(at: position, limit: limit) {
            if header.maxTimestamp >= timestamp {
                let bytes = try log.read(at: position, length: header.size)
                let batch = try RecordBatch(validating: bytes)
                var records = try batch.records(using: compressor)
                while let record = try records.next() {
                    if record.timestamp >= timestamp { return record.offset }
                }
            }
            position += Int64(header.size)
        }
        return nil
    }
}
