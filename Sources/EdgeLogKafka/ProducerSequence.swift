/// Kafka's producer sequence numbers (per producer id and partition): they wrap from
/// Int32.max to 0, so the listener checking them and the replicator assigning them share
/// this arithmetic.
public enum ProducerSequence {
    /// `sequence` advanced by `count`, wrapping from Int32.max to 0.
    public static func add(_ sequence: Int32, _ count: Int32) -> Int32 {
        sequence > Int32.max &- count ? count &- (Int32.max &- sequence) &- 1 : sequence &+ count
    }
}
