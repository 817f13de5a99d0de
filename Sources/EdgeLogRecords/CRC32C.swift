import CCRC32C
public import NIOCore

/// CRC-32C (Castagnoli, reflected polynomial 0x82F63B78), the checksum of Kafka's RecordBatch v2
/// and of edgelog's checkpoint files.
///
/// Uses the CPU's CRC instruction (SSE 4.2, ARMv8 CRC) when it has one and a slicing-by-8 table
/// otherwise. Both paths are checked against the RFC 3720 test vectors and against each other.
public enum CRC32C {
    /// Whether `checksum` runs on the CPU's CRC instruction.
    public static let isHardwareAccelerated: Bool = edgelog_crc32c_hw_available() == 1

    /// The CRC of `bytes`, continuing from a finished `crc` (0 to start).
    public static func checksum(_ bytes: UnsafeRawBufferPointer, continuing crc: UInt32 = 0) -> UInt32 {
        if isHardwareAccelerated, let base = bytes.baseAddress {
            return edgelog_crc32c_hw(crc, base, bytes.count)
        }
        return software(bytes, continuing: crc)
    }

    /// The CRC of the readable bytes of `buffer`.
    @inlinable
    public static func checksum(_ buffer: ByteBuffer) -> UInt32 {
        buffer.withUnsafeReadableBytes { checksum($0) }
    }

    /// The CRC of `length` bytes of `buffer` starting at absolute index `index`.
    @inlinable
    public static func checksum(_ buffer: ByteBuffer, at index: Int, length: Int) -> UInt32 {
        buffer.withUnsafeReadableBytes { raw in
            let start = index - buffer.readerIndex
            return checksum(UnsafeRawBufferPointer(rebasing: raw[start..<(start + length)]))
        }
    }

    /// The CRC of a byte sequence, for small inputs such as text files.
    public static func checksum(_ bytes: some Sequence<UInt8>) -> UInt32 {
        Array(bytes).withUnsafeBytes { checksum($0) }
    }

    /// The portable slicing-by-8 implementation.
    public static func software(_ bytes: UnsafeRawBufferPointer, continuing crc: UInt32 = 0) -> UInt32 {
        let table = SlicingTable.shared.words
        var state = ~crc
        var index = 0
        let count = bytes.count
        while count - index >= 8 {
            let low = state ^ (UInt32(bytes[index]) | UInt32(bytes[index + 1]) << 8
                | UInt32(bytes[index + 2]) << 16 | UInt32(bytes[index + 3]) << 24)
            state = table[7 * 256 + Int(low & 0xFF)]
                ^ table[6 * 256 + Int((low >> 8) & 0xFF)]
                ^ table[5 * 256 + Int((low >> 16) & 0xFF)]
                ^ table[4 * 256 + Int(low >> 24)]
                ^ table[3 * 256 + Int(bytes[index + 4])]
                ^ table[2 * 256 + Int(bytes[index + 5])]
                ^ table[1 * 256 + Int(bytes[index + 6])]
                ^ table[Int(bytes[index + 7])]
            index += 8
        }
        while index < count {
            state = table[Int((state ^ UInt32(bytes[index])) & 0xFF)] ^ (state >> 8)
            index += 1
        }
        return ~state
    }

    /// Eight 256-entry tables, each a CRC step further than the one before.
    private final class SlicingTable: Sendable {
        static let shared = SlicingTable()
        let words: [UInt32]

        private init() {
            let polynomial: UInt32 = 0x82F6_3B78
            var words = [UInt32](repeating: 0, count: 8 * 256)
            for byte in 0..<256 {
                var crc = UInt32(byte)
                for _ in 0..<8 {
                    crc = (crc & 1) != 0 ? (crc >> 1) ^ polynomial : crc >> 1
                }
                words[byte] = crc
            }
            for slice in 1..<8 {
                for byte in 0..<256 {
                    let previous = words[(slice - 1) * 256 + byte]
                    words[slice * 256 + byte] = (previous >> 8) ^ words[Int(previous & 0xFF)]
                }
            }
            self.words = words
        }
    }
}
