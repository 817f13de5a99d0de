@testable import EdgeLogStorage
import Foundation
import NIOCore
import Testing

/// `locate` (what a zero-copy fetch sends) must name exactly the bytes `read` returns.
@Suite struct StoredSpanTests {
    @Test func locateNamesExactlyTheBytesReadReturns() async throws {
        let directory = Fixtures.temporaryDirectory()
        defer { Fixtures.remove(directory) }
        var config = LogConfig()
        config.codec = .none
        config.segmentBytes = 64 * 1024
        config.indexIntervalBytes = 1024
        let (log, _) = try PartitionLogTests.open(directory, config: config)
        // Batches of 1 to 12 records of 100 to 400 bytes: uneven sizes around the index interval.
        var next = 0
        while next < 1500 {
            let count = next % 12 + 1
            _ = try await log.append(PartitionLogTests.records(next..<(next + count), size: 100 + next % 300))
            next += count
        }
        #expect(log.segments.count > 3)
        for offset in stride(from: Int64(0), to: 1500, by: 37) {
            for maxBytes in [1, 61, 700, 1024, 4096, 10_000, 70_000, 1 << 20] {
                let bytes = try log.read(from: offset, maxBytes: maxBytes)
                let span = try #require(try log.locate(from: offset, maxBytes: maxBytes))
                #expect(span.length == bytes.readableBytes, "offset \(offset) maxBytes \(maxBytes)")
                #expect(try span.read() == bytes, "offset \(offset) maxBytes \(maxBytes)")
            }
        }
        let end = log.logEndOffset
        #expect(try log.locate(from: end, maxBytes: 100) == nil, "nothing at the log end")
        #expect(throws: StorageError.offsetOutOfRange(offset: end + 1, logStart: 0, logEnd: end)) {
            try log.locate(from: end + 1, maxBytes: 100)
        }
        log.close()
    }

    @Test func aSpanOutlivesRetentionOfItsSegment() async throws {
        let directory = Fixtures.temporaryDirectory()
        defer { Fixtures.remove(directory) }
        var config = LogConfig()
        config.codec = .none
        config.segmentBytes = 4096
        let (log, _) = try PartitionLogTests.open(directory, config: config)
        for start in stride(from: 0, to: 200, by: 10) {
            _ = try await log.append(PartitionLogTests.records(start..<(start + 10)))
        }
        let expected = try log.read(from: 0, maxBytes: 1 << 20)
        let span = try #require(try log.locate(from: 0, maxBytes: 1 << 20))
        let descriptor = try span.duplicateDescriptor()
        defer { close(descriptor) }
        // The first segment's file goes away (as retention would unlink it) while the span is held.
        try FileManager.default.removeItem(atPath: span.file.path)
        #expect(try span.read() == expected)
        var copy = [UInt8](repeating: 0, count: span.length)
        #expect(pread(descriptor, &copy, span.length, off_t(span.position)) == span.length)
        #expect(ByteBuffer(bytes: copy) == expected, "the duplicated descriptor reads the same bytes")
        log.close()
    }
}
