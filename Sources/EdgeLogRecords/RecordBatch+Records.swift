public import NIOCore

extension RecordBatch {
    /// Decodes every record of the batch, decompressing the records section with `compressor`.
    /// Keys, values and header values are slices of the (decompressed) records buffer.
    public func decodeRecords(using compressor: BatchCompressor) throws(StorageError) -> [Record] {
        var iterator = try records(using: compressor)
        var result: [Record] = []
        result.reserveCapacity(Int(recordCount))
        while let record = try iterator.next() {
            result.append(record)
        }
        return result
    }

    /// An iterator over the batch's records.
    public func records(using compressor: BatchCompressor) throws(StorageError) -> RecordIterator {
        guard let codec else {
            throw .corruptBatch(reason: "unknown codec \(attributes & Self.codecMask) in attributes")
        }
        var section = recordsSection
        if codec != .none {
            var plain = ByteBuffer()
            try compressor.decompress(section, codec: codec, into: &plain)
            section = plain
        }
        return RecordIterator(batch: self, records: section)
    }
}

/// Walks the varint-encoded records of one batch. Every length is checked against the bytes
/// that are there, so a corrupt batch gives an error, never a crash or a read out of bounds.
public struct RecordIterator {
    private var records: ByteBuffer
    private let baseOffset: Int64
    private let baseTimestamp: Int64
    private let logAppendTime: Int64?
    private var remaining: Int32

    package init(batch: RecordBatch, records: ByteBuffer) {
        self.records = records
        self.baseOffset = batch.baseOffset
        self.baseTimestamp = batch.baseTimestamp
        self.logAppendTime = batch.usesLogAppendTime ? batch.maxTimestamp : nil
        self.remaining = batch.recordCount
    }

    public mutating func next() throws(StorageError) -> Record? {
        guard remaining > 0 else {
            if records.readableBytes > 0 {
                throw .corruptBatch(reason: "\(records.readableBytes) bytes after the last record")
            }
            return nil
        }
        remaining -= 1
        guard let length = records.readVarint(), length >= 0, length <= records.readableBytes else {
            throw .corruptBatch(reason: "record length runs past the end of the batch")
        }
        guard var body = records.readSlice(length: Int(length)) else {
            throw .corruptBatch(reason: "record length runs past the end of the batch")
        }
        guard body.readInteger(as: UInt8.self) != nil,
            let timestampDelta = body.readVarint(),
            let offsetDelta = body.readVarint()
        else { throw .corruptBatch(reason: "truncated record header") }
        let key = try Self.readBytes(&body, field: "key")
        let value = try Self.readBytes(&body, field: "value")
        guard let headerCount = body.readVarint(), headerCount >= 0, headerCount <= body.readableBytes else {
            throw .corruptBatch(reason: "invalid header count")
        }
        var headers: [RecordHeader] = []
        if headerCount > 0 {
            headers.reserveCapacity(Int(headerCount))
            for _ in 0..<headerCount {
                guard let keyLength = body.readVarint(), keyLength >= 0,
                    let headerKey = body.readString(length: Int(keyLength))
                else { throw .corruptBatch(reason: "invalid header key") }
                let headerValue = try Self.readBytes(&body, field: "header value")
                headers.append(RecordHeader(key: headerKey, value: headerValue))
            }
        }
        guard body.readableBytes == 0 else {
            throw .corruptBatch(reason: "\(body.readableBytes) unread bytes inside a record")
        }
        return Record(
            offset: baseOffset + offsetDelta,
            timestamp: logAppendTime ?? (baseTimestamp + timestampDelta),
            key: key,
            value: value,
            headers: headers)
    }

    private static func readBytes(_ body: inout ByteBuffer, field: String) throws(StorageError) -> ByteBuffer? {
        guard let length = body.readVarint() else { throw .corruptBatch(reason: "truncated \(field) length") }
        if length < 0 { return nil }
        guard length <= body.readableBytes, let bytes = body.readSlice(length: Int(length)) else {
            throw .corruptBatch(reason: "\(field) length \(length) runs past the end of the record")
        }
        return bytes
    }
}
