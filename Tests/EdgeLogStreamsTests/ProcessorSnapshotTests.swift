import NIOCore
import Testing

@testable import EdgeLogStreams

/// A processor's state saved and restored at any record gives a processor that goes on
/// exactly as the one saved: the same outputs, and at the end the same state, byte for byte.
/// This is what lets recovery start from a snapshot instead of from the beginning.
@Suite struct ProcessorSnapshotTests {
    static let queries = [
        """
        CREATE STREAM s WITH (OUT_OF_ORDER = '3 SECONDS', LATE_TOPIC = 'late') AS
        SELECT key, count(*) AS n, sum(t) AS total, avg(t) AS mean, min(t) AS lo, max(t) AS hi, first(t) AS f, last(t) AS l,
        stddev(t) AS sd, twa(t) AS tw, rate(c) AS r, percentile(t, 0.9) AS p90
        FROM sensors WINDOW TUMBLING (SIZE 10 SECONDS, GRACE PERIOD 2 SECONDS) GROUP BY key EMIT FINAL
        """,
        "CREATE STREAM s WITH (LATE = 'update', RETENTION = '30 SECONDS') AS SELECT key, sum(t) AS total FROM sensors WINDOW HOPPING (SIZE 20 SECONDS, ADVANCE BY 5 SECONDS) GROUP BY key EMIT CHANGES",
        "CREATE STREAM s WITH (OUT_OF_ORDER = '5 SECONDS') AS SELECT key, count(*) AS n, max(t) AS hi FROM sensors WINDOW SESSION (4 SECONDS) GROUP BY key",
        "CREATE STREAM s AS SELECT key, count(*) AS n, avg(t) AS mean FROM sensors WINDOW COUNT (3) GROUP BY key",
        "CREATE STREAM s WITH (MAX_KEYS = 3) AS SELECT key, count(*) AS n FROM sensors WINDOW TUMBLING (SIZE 30 SECONDS) GROUP BY key",
        "CREATE STREAM s AS SELECT key, upper(key) AS k, t * 2 AS double_t FROM sensors WHERE t > 3",
        "CREATE STREAM s WITH (MAX_KEYS = 4) AS SELECT key, t FROM sensors DEDUPE BY t WITHIN 5 SECONDS THROTTLE 3 PER 4 SECONDS DEADBAND c BY 2 EVERY 6 SECONDS",
    ]

    /// Out-of-order readings of 6 keys over 2 partitions, with a few late ones and a counter.
    static func workload(seed: UInt64, count: Int) -> [StreamRecord] {
        var random = SplitMix(seed: seed)
        var records: [StreamRecord] = []
        var counter = 0
        var offsets = [Int64](repeating: 0, count: 2)
        for index in 0..<count {
            let partition = Int32(random.next() % 2)
            var time = Int64(index) * 700 - Int64(random.next() % 4_000)
            if random.next() % 25 == 0 { time -= 15_000 }  // late
            counter = random.next() % 30 == 0 ? 0 : counter + Int(random.next() % 5)
            let key = "k\(random.next() % 6)"
            let value = #"{"t": \#(Int(random.next() % 20)), "c": \#(counter)}"#
            records.append(StreamRecord(
                topic: "sensors", partition: partition, offset: offsets[Int(partition)], timestampMs: 1_000_000 + max(0, time),
                key: Array(key.utf8), value: Array(value.utf8)))
            offsets[Int(partition)] += 1
        }
        return records
    }

    static func feed(_ processor: StreamProcessor, _ records: ArraySlice<StreamRecord>, into outputs: inout [StreamOutput]) {
        for record in records { _ = processor.process(record, wallClockMs: 2_000_000, into: &outputs) }
    }

    static func fresh(_ plan: ProcessorPlan) -> StreamProcessor {
        let processor = StreamProcessor(plan: plan)
        processor.registerInput(topic: "sensors", partition: 0)
        processor.registerInput(topic: "sensors", partition: 1)
        return processor
    }

    @Test(arguments: queries.indices)
    func restoringAtAnyRecordChangesNothing(queryIndex: Int) throws {
        let plan = try ProcessorPlan.make(Self.queries[queryIndex])
        let records = Self.workload(seed: UInt64(queryIndex) + 1, count: 160)
        let reference = Self.fresh(plan)
        var expected: [StreamOutput] = []
        Self.feed(reference, records[...], into: &expected)
        #expect(!expected.isEmpty)
        let finalState = reference.encodeState()

        for split in stride(from: 0, through: records.count, by: 7) {
            let before = Self.fresh(plan)
            var outputs: [StreamOutput] = []
            Self.feed(before, records[..<split], into: &outputs)
            let saved = before.encodeState()
            let after = StreamProcessor(plan: plan)
            try after.restoreState(from: saved)
            #expect(after.encodeState() == saved, "a restored state encodes to the bytes it came from")
            Self.feed(after, records[split...], into: &outputs)
            #expect(outputs == expected, "query \(queryIndex), restored after \(split) records")
            #expect(after.encodeState() == finalState, "query \(queryIndex), restored after \(split) records: final state")
            if outputs != expected { break }
        }
    }

    @Test func damagedStateBytesAreRefusedAndTheProcessorKeepsItsState() throws {
        let plan = try ProcessorPlan.make(Self.queries[0])
        let processor = Self.fresh(plan)
        var outputs: [StreamOutput] = []
        Self.feed(processor, Self.workload(seed: 9, count: 50)[...], into: &outputs)
        let state = processor.encodeState()
        let target = Self.fresh(plan)
        let before = target.encodeState()
        for cut in [0, 1, 9, state.readableBytes / 2, state.readableBytes - 1] {
            #expect(throws: StateDecodingError.self) { try target.restoreState(from: state.getSlice(at: 0, length: cut)!) }
        }
        var extra = state
        extra.writeInteger(UInt8(0))
        #expect(throws: StateDecodingError.self) { try target.restoreState(from: extra) }
        var badTag = state
        badTag.setInteger(UInt8(99), at: 0)
        #expect(throws: StateDecodingError.self) { try target.restoreState(from: badTag) }
        #expect(target.encodeState() == before)
    }

    @Test func snapshotFilesCarryAChecksum() throws {
        let snapshot = ProcessorSnapshot(
            query: "q", nextCommitOffset: 42, positions: [.init(topic: "t", partition: 1, nextOffset: 7)], state: ByteBuffer(string: "state"))
        let decoded = try ProcessorSnapshot(decoding: snapshot.encoded())
        #expect(decoded.query == "q")
        #expect(decoded.nextCommitOffset == 42)
        #expect(decoded.positions == snapshot.positions)
        #expect(decoded.state == ByteBuffer(string: "state"))
        var flipped = snapshot.encoded()
        let last = flipped.writerIndex - 1
        flipped.setInteger(flipped.getInteger(at: last, as: UInt8.self)! ^ 1, at: last)
        #expect(throws: StateDecodingError.self) { try ProcessorSnapshot(decoding: flipped) }
        let commit = ProcessorCommit(
            steps: [.records(topic: "t", partition: 0, from: 3, to: 9, wallClockMs: 5), .idle(topic: "t", partition: 1, wallClockMs: 6)],
            outputs: [.init(topic: "o", partition: 2, endBefore: 10, count: 4)])
        #expect(try ProcessorCommit(decoding: commit.encoded()) == commit)
        #expect(throws: StateDecodingError.self) { try ProcessorCommit(decoding: commit.encoded().getSlice(at: 0, length: 20)!) }
    }
}

/// A small deterministic generator (SplitMix64), so every run sees the same workload.
struct SplitMix {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> Int {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return Int(truncatingIfNeeded: (z ^ (z >> 31)) >> 1)
    }
}
