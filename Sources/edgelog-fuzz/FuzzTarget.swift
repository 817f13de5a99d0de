/// One decoder of bytes from outside, driven by libFuzzer or replayed from its corpus.
protocol FuzzTarget {
    /// Runs one input: a crash, a trap or a failed check is a bug; refusing the input is not.
    static func run(_ bytes: UnsafeRawBufferPointer)
    /// Starting points for the fuzzer to mutate, written by `--write-seeds`.
    static func seeds() -> [(name: String, bytes: [UInt8])]
}

/// The targets by the name given on the command line; each keeps its corpus in `Tests/Fuzz/<name>`.
nonisolated(unsafe) let fuzzTargets: [String: any FuzzTarget.Type] = [
    "kafka-request": KafkaRequestFuzzer.self,
    "toml": TOMLFuzzer.self,
    "http-records": HTTPRecordsFuzzer.self,
    "mqtt-route": MQTTRouteFuzzer.self,
    "checkpoint": CheckpointFuzzer.self,
    "segment": SegmentFuzzer.self,
    "sql": SQLFuzzer.self,
]
