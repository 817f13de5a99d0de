import Foundation
public import NIOCore

extension PartitionLog {
    public typealias AppendCompletion = @Sendable (Result<AppendResult, StorageError>) -> Void

    /// Appends records and calls `completion` once they are committed under the flush policy
    /// (or with the error that stopped them). Nothing of a request that fails validation is
    /// written: a record over `maxBatchBytes` fails the whole request.
    public func append(_ records: [Record], completion: @escaping AppendCompletion) {
        guard !records.isEmpty else {
            let end = logEndOffset
            completion(.success(AppendResult(baseOffset: end, lastOffset: end - 1)))
            return
        }
        var bytes = 0
        for record in records {
            let size = RecordBatchBuilder.encodedSizeBound(of: record) + RecordBatch.Layout.headerSize
            guard size <= config.maxBatchBytes else {
                completion(.failure(.recordTooLarge(bytes: size, maxBytes: config.maxBatchBytes)))
                return
            }
            bytes += size - RecordBatch.Layout.headerSize
        }
        appender.enqueue(.init(payload: .records(records), bytes: bytes, completion: completion), partition: self)
    }

    /// Appends whole RecordBatch v2 batches as they are (a Kafka producer's or another edgelog's),
    /// giving them new base offsets. Every batch's framing and CRC are checked first.
    public func append(batches: ByteBuffer, completion: @escaping AppendCompletion) {
        var cursor = batches
        var count = 0
        while cursor.readableBytes > 0 {
            guard let size = RecordBatch.frameSize(in: cursor, at: cursor.readerIndex),
                size >= RecordBatch.Layout.headerSize, let slice = cursor.readSlice(length: size)
            else {
                completion(.failure(.corruptBatch(reason: "truncated batch in the appended bytes")))
                return
            }
            do {
                let batch = try RecordBatch(validating: slice)
                try batch.verifyChecksum()
                guard batch.codec != nil else { throw StorageError.corruptBatch(reason: "unknown codec") }
                guard size <= config.maxBatchBytes + RecordBatch.Layout.headerSize else {
                    throw StorageError.recordTooLarge(bytes: size, maxBytes: config.maxBatchBytes)
                }
                count += Int(batch.lastOffsetDelta) + 1
            } catch let error as StorageError {
                completion(.failure(error))
                return
            } catch {
                completion(.failure(.corruptBatch(reason: "\(error)")))
                return
            }
        }
        guard count > 0 else {
            completion(.failure(.corruptBatch(reason: "no batches in the appended bytes")))
            return
        }
        appender.enqueue(
            .init(payload: .batches(batches), bytes: batches.readableBytes, completion: completion), partition: self)
    }

    /// Appends and suspends until the records are committed.
    public func append(_ records: [Record]) async throws -> AppendResult {
        try await withCheckedThrowingContinuation { continuation in
            append(records) { continuation.resume(with: $0.mapError { $0 as any Error }) }
        }
    }

    /// Appends stored batches and suspends until they are committed.
    public func append(batches: ByteBuffer) async throws -> AppendResult {
        try await withCheckedThrowingContinuation { continuation in
            append(batches: batches) { continuation.resume(with: $0.mapError { $0 as any Error }) }
        }
    }

    /// Appends and blocks the calling thread until committed: for tools and tests, never for
    /// code on an event loop or in a Swift concurrency task.
    public func appendAndWait(_ records: [Record]) throws(StorageError) -> AppendResult {
        let waiter = Waiter()
        append(records) { waiter.finish($0) }
        return try waiter.wait().get()
    }

    public func appendAndWait(batches: ByteBuffer) throws(StorageError) -> AppendResult {
        let waiter = Waiter()
        append(batches: batches) { waiter.finish($0) }
        return try waiter.wait().get()
    }
}

/// Blocks one thread until a completion arrives.
private final class Waiter: @unchecked Sendable {
    private let condition = BlockingCondition()
    private var result: Result<AppendResult, StorageError>?

    func finish(_ result: Result<AppendResult, StorageError>) {
        condition.withLock {
            self.result = result
            condition.broadcast()
        }
    }

    func wait() -> Result<AppendResult, StorageError> {
        condition.lock()
        defer { condition.unlock() }
        while result == nil { condition.wait() }
        return result!
    }
}

/// The queue between producers and a partition's writer thread.
///
/// Producers enqueue and return; the writer takes everything queued (up to `maxBatchBytes`),
/// encodes it into as few batches as the size limit allows, compresses each once, writes the
/// whole group with one write, makes it durable with one fsync (`always`), publishes the new
/// end and completes every request of the group. What arrives during a write and fsync forms
/// the next group: that is the group commit.
final class Appender: @unchecked Sendable {
    struct Pending {
        enum Payload {
            case records([Record])
            case batches(ByteBuffer)
        }
        var payload: Payload
        var bytes: Int
        var enqueuedNanos: UInt64 = monotonicNanos()
        var completion: PartitionLog.AppendCompletion
    }

    let condition = BlockingCondition()
    // Guarded by `condition`.
    var queue: [Pending] = []
    var queuedBytes = 0
    var closing = false
    var exited = false

    /// The running thread keeps itself and its closure (and so the partition) alive until the
    /// writer returns; nothing else holds it, so a closed partition is freed (a stored
    /// reference here made a cycle: partition, appender, thread, closure, partition).
    func start(partition: PartitionLog) {
        let thread = Thread { partition.runWriter() }
        thread.name = "edgelog-append-\(partition.name)"
        thread.stackSize = 1 << 20
        thread.start()
    }

    func enqueue(_ pending: Pending, partition: PartitionLog) {
        condition.lock()
        if closing {
            condition.unlock()
            pending.completion(.failure(.closed))
            return
        }
        queue.append(pending)
        queuedBytes += pending.bytes
        condition.signal()
        condition.unlock()
    }

    /// Asks the writer to drain and stop, and waits until it has.
    func close() {
        condition.lock()
        closing = true
        condition.broadcast()
        while !exited { condition.wait() }
        condition.unlock()
    }
}
