import EdgeLogStorage
import Testing

@Suite struct CRC32CTests {
    // RFC 3720 (iSCSI), appendix B.4, plus the common "123456789" check value.
    static let vectors: [(bytes: [UInt8], crc: UInt32)] = [
        (Array("123456789".utf8), 0xE306_9283),
        ([UInt8](repeating: 0, count: 32), 0x8A91_36AA),
        ([UInt8](repeating: 0xFF, count: 32), 0x62A8_AB43),
        (Array(0...31), 0x46DD_794E),
        (Array((0...31).reversed()), 0x113F_DB5C),
        ([], 0),
    ]

    @Test func publishedVectors() {
        for vector in Self.vectors {
            let hardwareOrDefault = vector.bytes.withUnsafeBytes { CRC32C.checksum($0) }
            let software = vector.bytes.withUnsafeBytes { CRC32C.software($0) }
            #expect(hardwareOrDefault == vector.crc)
            #expect(software == vector.crc)
        }
    }

    @Test func hardwareIsUsedOnThisCPU() {
        // x86-64 machines with SSE 4.2 and ARMv8 boxes with the CRC extension both have it.
        #if arch(x86_64) || arch(arm64)
        #expect(CRC32C.isHardwareAccelerated)
        #endif
    }

    @Test func pathsAgreeOnEveryLengthAndAlignment() {
        var generator = SystemRandomNumberGenerator()
        let bytes = (0..<4099).map { _ in UInt8.random(in: 0...255, using: &generator) }
        bytes.withUnsafeBytes { raw in
            for start in 0..<9 {
                for length in [0, 1, 7, 8, 9, 31, 32, 33, 100, 1000, 4090 - start] {
                    let slice = UnsafeRawBufferPointer(rebasing: raw[start..<(start + length)])
                    #expect(CRC32C.checksum(slice) == CRC32C.software(slice))
                }
            }
        }
    }

    @Test func continuingEqualsOneShot() {
        let bytes = Array("The quick brown fox jumps over the lazy dog".utf8)
        bytes.withUnsafeBytes { raw in
            let whole = CRC32C.checksum(raw)
            let first = CRC32C.checksum(UnsafeRawBufferPointer(rebasing: raw[0..<10]))
            let both = CRC32C.checksum(UnsafeRawBufferPointer(rebasing: raw[10...]), continuing: first)
            #expect(whole == both)
            #expect(whole == 0x2262_0404)
        }
    }
}
