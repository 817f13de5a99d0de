public import NIOCore

/// Where an idempotent producer's batch landed: read from a stored batch header, so that
/// producer state (each producer's epoch, next sequence and recent batches) can be rebuilt
/// from the log itself after a restart, as Kafka rebuilds it from its segments.
public struct ProducerBatch: Sendable, Equatable {
    public var producerId: Int64
    public var producerEpoch: Int16
    public var baseSequence: Int32
    public var recordCount: Int32
    public var baseOffset: Int64
    /// The largest record timestamp in the batch.
    public var maxTimestamp: Int64
    /// Stored size of the whole batch.
    public var size: Int

    /// Reads the fields from the first `RecordBatch.Layout.headerSize` bytes of a batch; nil
    /// when they are too short or the length is impossible.
    public init?(header bytes: ByteBuffer) {
        let at = bytes.readerIndex
        typealias Layout = RecordBatch.Layout
        guard bytes.readableBytes >= Layout.headerSize,
            let baseOffset = bytes.getInteger(at: at + Layout.baseOffset, as: Int64.self),
            let length = bytes.getInteger(at: at + Layout.batchLength, as: Int32.self),
            let delta = bytes.getInteger(at: at + Layout.lastOffsetDelta, as: Int32.self),
            let producerId = bytes.getInteger(at: at + Layout.producerId, as: Int64.self),
            let epoch = bytes.getInteger(at: at + Layout.producerEpoch, as: Int16.self),
            let sequence = bytes.getInteger(at: at + Layout.baseSequence, as: Int32.self),
            let maxTimestamp = bytes.getInteger(at: at + Layout.maxTimestamp, as: Int64.self),
            Int(length) + Layout.logOverhead >= Layout.headerSize
        else { return nil }
        self.producerId = producerId
        self.producerEpoch = epoch
        self.baseSequence = sequence
        self.recordCount = delta &+ 1
        self.baseOffset = baseOffset
        self.maxTimestamp = maxTimestamp
        self.size = Int(length) + Layout.logOverhead
    }
}
