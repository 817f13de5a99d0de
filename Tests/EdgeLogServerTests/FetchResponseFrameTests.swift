import EdgeLogKafka
@testable import EdgeLogServer
@testable import EdgeLogStorage
import Foundation
import NIOCore
import Synchronization
import Testing
@testable import EdgeLogKafkaListener

/// The zero-copy Fetch answer must be byte for byte what the generated codec writes.
@Suite struct FetchResponseFrameTests {
    @Test(arguments: Array(KafkaBroker.supportedVersions[.fetch]!))
    func splicedFrameEqualsTheGeneratedEncoding(version: Int16) throws {
        let path = NSTemporaryDirectory() + "fetch-frame-\(version)-\(getpid()).log"
        defer { unlink(path) }
        let file = try LogFile(path: path, create: true)
        let stored = ByteBuffer(bytes: (0..<3000).map { UInt8(truncatingIfNeeded: $0 &* 7) })
        try file.write(stored, at: 0)
        let first = StoredSpan(file: file, position: 100, length: 1200)
        let second = StoredSpan(file: file, position: 1500, length: 1)

        var withSpans = FetchResponse(throttleTimeMs: 3, sessionId: 0, responses: [
            .init(topic: version >= 13 ? "" : "alpha", topicId: version >= 13 ? KafkaUUID(high: 1, low: 2) : .zero, partitions: [
                .init(partitionIndex: 0, highWatermark: 10, lastStableOffset: 10, logStartOffset: 0, records: nil),
                .init(partitionIndex: 1, errorCode: 1, highWatermark: -1, lastStableOffset: -1, records: nil),
                .init(partitionIndex: 2, highWatermark: 5, lastStableOffset: 5, logStartOffset: 2, records: ByteBuffer()),
            ]),
            .init(topic: version >= 13 ? "" : "β-topic", topicId: version >= 13 ? KafkaUUID(high: .max, low: 7) : .zero, partitions: [
                .init(partitionIndex: 7, highWatermark: 99, lastStableOffset: 99, logStartOffset: 1, records: nil)
            ]),
        ])
        withSpans.responses[0].partitions[0].abortedTransactions = []
        let spans: [[StoredSpan?]] = [[first, nil, nil], [second]]
        let frame = try FetchResponseFrame.make(withSpans, spans: spans, correlationId: 42, version: version)
        var spliced = ByteBuffer()
        for piece in frame.pieces {
            switch piece {
            case .bytes(let bytes): spliced.writeImmutableBuffer(bytes)
            case .stored(let span): spliced.writeImmutableBuffer(try span.read())
            }
        }

        var inMemory = withSpans
        inMemory.responses[0].partitions[0].records = try first.read()
        inMemory.responses[1].partitions[0].records = try second.read()
        var expected = ByteBuffer()
        expected.writeInteger(Int32(0))
        KafkaResponseHeader(correlationId: 42).write(to: &expected, headerVersion: FetchResponse.responseHeaderVersion(version))
        try inMemory.write(to: &expected, version: version)
        expected.setInteger(Int32(expected.readableBytes - 4), at: 0)

        #expect(spliced == expected)
        #expect(frame.byteCount == expected.readableBytes)
        // And a client decodes it back to the records.
        var body = spliced
        body.moveReaderIndex(forwardBy: 4)
        _ = try KafkaResponseHeader(from: &body, headerVersion: FetchResponse.responseHeaderVersion(version))
        let decoded = try FetchResponse(from: &body, version: version)
        #expect(decoded.responses[0].partitions[0].records == (try first.read()))
        #expect(body.readableBytes == 0)
    }
}

/// A connection's bound on pending answers.
@Suite struct AnswerSlotsTests {
    @Test func theReaderWaitsForAFreeSlotAndStopsWhenTheWriterCloses() async throws {
        let slots = AnswerSlots(2)
        #expect(await slots.acquire())
        #expect(await slots.acquire())
        let acquired = Atomic<Int>(0)
        let third = Task {
            let result = await slots.acquire()
            acquired.store(1, ordering: .releasing)
            return result
        }
        try await Task.sleep(for: .milliseconds(50))
        #expect(acquired.load(ordering: .acquiring) == 0, "no slot is free yet")
        slots.release()
        #expect(await third.value)
        let fourth = Task { await slots.acquire() }
        slots.close()
        #expect(await fourth.value == false)
        #expect(await slots.acquire() == false)
    }
}
