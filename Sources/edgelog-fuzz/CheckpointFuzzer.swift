@testable import EdgeLogStorage

/// A checkpoint file's text (recovery points, log starts, replication checkpoints, consumer
/// positions): it decodes, or is refused as corrupt; what decodes encodes to the same values.
enum CheckpointFuzzer: FuzzTarget {
    static func run(_ bytes: UnsafeRawBufferPointer) {
        guard let checkpoint = try? Checkpoint.decode(String(decoding: bytes, as: UTF8.self), path: "fuzz") else { return }
        let again = try? Checkpoint.decode(String(decoding: checkpoint.encoded().readableBytesView, as: UTF8.self), path: "again")
        precondition(again == checkpoint, "a decoded checkpoint does not survive its own encoding")
    }

    static func seeds() -> [(name: String, bytes: [UInt8])] {
        [
            ("offsets", Checkpoint(["offset": 42, "segment": 0, "position": 4096, "max_timestamp": 1_764_547_200_000])),
            ("empty", Checkpoint([:])),
            ("negative", Checkpoint(["offset": -1, "epoch": Int64.min])),
        ].map { ($0.0, Array($0.1.encoded().readableBytesView)) }
    }
}
