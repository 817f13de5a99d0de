import CSnappy
import NIOCore

/// Kafka's snappy records sections, through Debian's libsnappy (stateless: no context to keep).
///
/// Two framings exist in the wild and both are read:
/// - plain snappy, one block for the whole section: what librdkafka (confluent-kafka, kcat,
///   Go and .NET clients) writes, and what edgelog writes;
/// - xerial's stream framing, written by the Java client (snappy-java's SnappyOutputStream)
///   and kafka-python: a 16-byte header (`0x82 "SNAPPY" 0`, version, compatible version),
///   then blocks of a big-endian Int32 length and a plain snappy block of at most 32 KiB of
///   input each.
/// Every reader (Java's SnappyInputStream, librdkafka, kafka-python) accepts plain snappy, so
/// edgelog writes that.
enum Snappy {
    static let xerialMagic: [UInt8] = [0x82, 0x53, 0x4E, 0x41, 0x50, 0x50, 0x59, 0x00]
    static let xerialHeaderSize = 16

    static func compress(_ input: ByteBuffer, into output: inout ByteBuffer) throws(StorageError) {
        guard input.readableBytes > 0 else {
            output.writeInteger(UInt8(0))  // the block of nothing: its length varint, 0
            return
        }
        let bound = snappy_max_compressed_length(input.readableBytes)
        var status = SNAPPY_OK
        input.withUnsafeReadableBytes { source in
            output.writeWithUnsafeMutableBytes(minimumWritableBytes: bound) { destination in
                var length = destination.count
                status = snappy_compress(
                    source.baseAddress!.assumingMemoryBound(to: CChar.self), source.count,
                    destination.baseAddress!.assumingMemoryBound(to: CChar.self), &length)
                return status == SNAPPY_OK ? length : 0
            }
        }
        guard status == SNAPPY_OK else { throw .compression(codec: .snappy, reason: "snappy_compress returned \(status.rawValue)") }
    }

    /// Decodes either framing; the output may not exceed `maxBytes`, checked against each
    /// block's declared length before anything is allocated for it.
    static func decompress(_ input: ByteBuffer, maxBytes: Int, into output: inout ByteBuffer) throws(StorageError) {
        guard isXerial(input) else {
            try decompressBlock(input, budget: maxBytes, into: &output)
            return
        }
        var blocks = input
        blocks.moveReaderIndex(forwardBy: xerialHeaderSize)
        let start = output.writerIndex
        while blocks.readableBytes > 0 {
            guard let length = blocks.readInteger(as: Int32.self), length >= 0,
                let block = blocks.readSlice(length: Int(length))
            else { throw .compression(codec: .snappy, reason: "truncated xerial snappy block") }
            try decompressBlock(block, budget: maxBytes - (output.writerIndex - start), into: &output)
        }
    }

    static func isXerial(_ input: ByteBuffer) -> Bool {
        input.readableBytes >= xerialHeaderSize
            && input.withUnsafeReadableBytes { $0.prefix(xerialMagic.count).elementsEqual(xerialMagic) }
    }

    private static func decompressBlock(_ block: ByteBuffer, budget: Int, into output: inout ByteBuffer) throws(StorageError) {
        try block.withUnsafeReadableBytes { (source) throws(StorageError) in
            guard let compressed = source.baseAddress?.assumingMemoryBound(to: CChar.self), source.count > 0 else {
                throw .compression(codec: .snappy, reason: "empty snappy block")
            }
            var declared = 0
            guard snappy_uncompressed_length(compressed, source.count, &declared) == SNAPPY_OK else {
                throw .compression(codec: .snappy, reason: "corrupt snappy block (no length header)")
            }
            guard declared <= budget else {
                throw .compression(codec: .snappy, reason: "decompressed size exceeds the limit of the batch")
            }
            guard declared > 0 else { return }
            var status = SNAPPY_OK
            output.writeWithUnsafeMutableBytes(minimumWritableBytes: declared) { destination in
                var length = declared
                status = snappy_uncompress(
                    compressed, source.count, destination.baseAddress!.assumingMemoryBound(to: CChar.self), &length)
                return status == SNAPPY_OK ? length : 0
            }
            guard status == SNAPPY_OK else {
                throw .compression(codec: .snappy, reason: "corrupt snappy block (snappy_uncompress returned \(status.rawValue))")
            }
        }
    }
}
