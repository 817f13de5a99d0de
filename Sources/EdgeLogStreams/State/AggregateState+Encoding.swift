import NIOCore

extension AggregateState {
    func encode(into buffer: inout ByteBuffer) {
        switch self {
        case .count(let count):
            buffer.writeStateByte(1)
            buffer.writeStateInt(count)
        case .sum(let integer, let double, let isDouble, let seen):
            buffer.writeStateByte(2)
            buffer.writeStateInt(integer)
            buffer.writeStateDouble(double)
            buffer.writeStateByte((isDouble ? 1 : 0) | (seen ? 2 : 0))
        case .extreme(let value):
            buffer.writeStateByte(3)
            buffer.writeStateValue(value)
        case .mean(let count, let sum):
            buffer.writeStateByte(4)
            buffer.writeStateInt(count)
            buffer.writeStateDouble(sum)
        case .byTime(let timeMs, let sequence, let value):
            buffer.writeStateByte(5)
            buffer.writeStateInt(timeMs)
            buffer.writeStateInt(sequence)
            buffer.writeStateValue(value)
        case .moments(let count, let mean, let m2):
            buffer.writeStateByte(6)
            buffer.writeStateInt(count)
            buffer.writeStateDouble(mean)
            buffer.writeStateDouble(m2)
        case .series(let readings):
            buffer.writeStateByte(7)
            buffer.writeStateInt(Int64(readings.count))
            for reading in readings {
                buffer.writeStateInt(reading.timeMs)
                buffer.writeStateDouble(reading.value)
            }
        case .sketch(let sketch):
            buffer.writeStateByte(8)
            sketch.encode(into: &buffer)
        }
    }

    static func decode(from buffer: inout ByteBuffer) throws(StateDecodingError) -> AggregateState {
        switch try buffer.readStateByte() {
        case 1: return .count(try buffer.readStateInt())
        case 2:
            let integer = try buffer.readStateInt()
            let double = try buffer.readStateDouble()
            let flags = try buffer.readStateByte()
            return .sum(integer: integer, double: double, isDouble: flags & 1 != 0, seen: flags & 2 != 0)
        case 3: return .extreme(try buffer.readStateValue())
        case 4: return .mean(count: try buffer.readStateInt(), sum: try buffer.readStateDouble())
        case 5: return .byTime(timeMs: try buffer.readStateInt(), sequence: try buffer.readStateInt(), value: try buffer.readStateValue())
        case 6:
            return .moments(count: try buffer.readStateInt(), mean: try buffer.readStateDouble(), m2: try buffer.readStateDouble())
        case 7:
            let count = try buffer.readStateCount(max: seriesLimit + 1)
            var readings: [TimedReading] = []
            readings.reserveCapacity(count)
            for _ in 0..<count { readings.append(TimedReading(timeMs: try buffer.readStateInt(), value: try buffer.readStateDouble())) }
            return .series(readings)
        case 8: return .sketch(try QuantileSketch.decode(from: &buffer))
        case let tag: throw StateDecodingError("unknown aggregate tag \(tag)")
        }
    }
}

extension QuantileSketch {
    func encode(into buffer: inout ByteBuffer) {
        for bins in [positive, negative] {
            buffer.writeStateInt(Int64(bins.count))
            // Sorted, so that the same sketch always encodes to the same bytes.
            for index in bins.keys.sorted() {
                buffer.writeStateInt(Int64(index))
                buffer.writeStateInt(bins[index]!)
            }
        }
        buffer.writeStateInt(zeros)
        buffer.writeStateInt(count)
        buffer.writeStateDouble(minimum)
        buffer.writeStateDouble(maximum)
    }

    static func decode(from buffer: inout ByteBuffer) throws(StateDecodingError) -> QuantileSketch {
        var sketch = QuantileSketch()
        for sign in 0..<2 {
            let count = try buffer.readStateCount(max: maxBins + 1)
            var bins: [Int32: Int64] = [:]
            for _ in 0..<count {
                let index = try buffer.readStateInt()
                guard let bin = Int32(exactly: index) else { throw StateDecodingError("sketch bin \(index) out of range") }
                bins[bin] = try buffer.readStateInt()
            }
            if sign == 0 { sketch.positive = bins } else { sketch.negative = bins }
        }
        sketch.zeros = try buffer.readStateInt()
        sketch.count = try buffer.readStateInt()
        sketch.minimum = try buffer.readStateDouble()
        sketch.maximum = try buffer.readStateDouble()
        return sketch
    }
}

extension KeyState {
    func encode(into buffer: inout ByteBuffer) {
        buffer.writeStateInt(Int64(groups.count))
        for group in groups { buffer.writeStateValue(group) }
        buffer.writeStateInt(completedCountWindows)
        buffer.writeStateInt(Int64(windows.count))
        for start in windows.keys.sorted() {
            let window = windows[start]!
            buffer.writeStateInt(start)
            buffer.writeStateInt(window.startMs)
            buffer.writeStateInt(window.endMs)
            buffer.writeStateInt(window.records)
            buffer.writeStateByte(window.closed ? 1 : 0)
            buffer.writeStateInt(Int64(window.aggregates.count))
            for aggregate in window.aggregates { aggregate.encode(into: &buffer) }
        }
        if let filter {
            buffer.writeStateByte(1)
            buffer.writeStateInt(Int64(filter.seen.count))
            for id in filter.seen.keys.sorted() {
                buffer.writeStateText(id)
                buffer.writeStateInt(filter.seen[id]!)
            }
            buffer.writeStateInt(Int64(filter.pruneAt))
            buffer.writeStateInt(filter.throttleStartMs)
            buffer.writeStateInt(filter.throttlePassed)
            buffer.writeStateByte(filter.lastValue == nil ? 0 : 1)
            if let value = filter.lastValue { buffer.writeStateDouble(value) }
            buffer.writeStateOptionalInt(filter.lastPassedMs)
        } else {
            buffer.writeStateByte(0)
        }
    }

    /// Each window goes with its key in `windows`: its start, or a count window's number.
    static func decode(from buffer: inout ByteBuffer) throws(StateDecodingError) -> KeyState {
        let groupCount = try buffer.readStateCount(max: 1024)
        var groups: [StreamValue] = []
        for _ in 0..<groupCount { groups.append(try buffer.readStateValue()) }
        var state = KeyState(groups: groups, keyText: StreamProcessor.keyText(groups))
        state.completedCountWindows = try buffer.readStateInt()
        let windowCount = try buffer.readStateCount(max: 1 << 20)
        for _ in 0..<windowCount {
            let key = try buffer.readStateInt()
            let startMs = try buffer.readStateInt()
            let endMs = try buffer.readStateInt()
            let records = try buffer.readStateInt()
            let closed = try buffer.readStateByte() == 1
            let aggregateCount = try buffer.readStateCount(max: 1024)
            var aggregates: [AggregateState] = []
            for _ in 0..<aggregateCount { aggregates.append(try AggregateState.decode(from: &buffer)) }
            let window = WindowState(startMs: startMs, endMs: endMs, aggregates: aggregates, records: records, closed: closed)
            state.windows[key] = window
        }
        if try buffer.readStateByte() == 1 {
            var filter = KeyFilterState()
            for _ in 0..<(try buffer.readStateCount()) {
                let id = try buffer.readStateText()
                filter.seen[id] = try buffer.readStateInt()
            }
            filter.pruneAt = try buffer.readStateCount()
            filter.throttleStartMs = try buffer.readStateInt()
            filter.throttlePassed = try buffer.readStateInt()
            if try buffer.readStateByte() == 1 { filter.lastValue = try buffer.readStateDouble() }
            filter.lastPassedMs = try buffer.readStateOptionalInt()
            state.filter = filter
        }
        return state
    }
}
