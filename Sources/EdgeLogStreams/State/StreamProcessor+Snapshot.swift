public import NIOCore

extension StreamProcessor {
    static let stateFormatVersion: UInt8 = 1

    /// Everything the processor holds, as bytes: its keys (least recently updated first) with
    /// their windows and aggregates, each input partition's clock, the watermark and the read
    /// sequence. `restoreState` of these bytes gives a processor that emits exactly what this
    /// one would from here on. Deadlines are not saved: they follow from the windows.
    public func encodeState() -> ByteBuffer {
        var buffer = ByteBuffer()
        buffer.reserveCapacity(4096 + store.stateBytes)
        buffer.writeStateByte(Self.stateFormatVersion)
        buffer.writeStateInt(sequence)
        buffer.writeStateInt(watermarkMs)
        let inputs = inputClocks.keys.sorted()
        buffer.writeStateInt(Int64(inputs.count))
        for input in inputs {
            let clock = inputClocks[input]!
            buffer.writeStateText(input.topic)
            buffer.writeStateInt(Int64(input.partition))
            buffer.writeStateOptionalInt(clock.maxEventMs)
            buffer.writeStateOptionalInt(clock.idleFloorMs)
        }
        let order = store.slotsLeastRecentFirst
        buffer.writeStateInt(Int64(order.count))
        for slot in order { store.slots[slot]!.encode(into: &buffer) }
        return buffer
    }

    /// Replaces the processor's state with a saved one. Throws, leaving the state as it was,
    /// on bytes that do not decode.
    public func restoreState(from bytes: ByteBuffer) throws(StateDecodingError) {
        var buffer = bytes
        let version = try buffer.readStateByte()
        guard version == Self.stateFormatVersion else { throw StateDecodingError("state format \(version) is not \(Self.stateFormatVersion)") }
        let sequence = try buffer.readStateInt()
        let watermark = try buffer.readStateInt()
        var clocks: [InputPartition: InputClock] = [:]
        for _ in 0..<(try buffer.readStateCount(max: 1 << 16)) {
            let topic = try buffer.readStateText()
            guard let partition = Int32(exactly: try buffer.readStateInt()) else { throw StateDecodingError("partition out of range") }
            let clock = InputClock(maxEventMs: try buffer.readStateOptionalInt(), idleFloorMs: try buffer.readStateOptionalInt())
            clocks[InputPartition(topic: topic, partition: partition)] = clock
        }
        var keys: [KeyState] = []
        for _ in 0..<(try buffer.readStateCount()) { keys.append(try KeyState.decode(from: &buffer)) }
        guard buffer.readableBytes == 0 else { throw StateDecodingError("\(buffer.readableBytes) bytes after the state") }

        self.sequence = sequence
        self.watermarkMs = watermark
        self.inputClocks = clocks
        store = WindowStore()
        for key in keys {
            let slot = store.insert(key)
            for (start, window) in key.windows {
                if window.closed {
                    if case .update(let retentionMs) = plan.latePolicy {
                        store.schedule(.init(
                            atMs: closeAt(window) &+ retentionMs, startMs: start, keyText: key.keyText, slot: slot, removal: true))
                    }
                } else {
                    schedule(slot, start: start)
                }
            }
        }
        refreshGauges()
    }
}
