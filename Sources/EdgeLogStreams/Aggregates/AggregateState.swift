/// The running state of one aggregate in one window of one key. Readings that are null (or,
/// for numeric aggregates, not numbers) are skipped, as SQL aggregates skip nulls.
enum AggregateState: Sendable, Equatable {
    case count(Int64)
    /// Integer sums stay exact until they overflow or meet a double.
    case sum(integer: Int64, double: Double, isDouble: Bool, seen: Bool)
    case extreme(StreamValue)
    case mean(count: Int64, sum: Double)
    /// The reading with the lowest (first) or highest (last) event time; `sequence` orders
    /// ties by the order records were read.
    case byTime(timeMs: Int64, sequence: Int64, value: StreamValue)
    /// Welford's running mean and sum of squared differences.
    case moments(count: Int64, mean: Double, m2: Double)
    /// Readings in event-time order, for the time-weighted average and the counter rate.
    case series([TimedReading])
    case sketch(QuantileSketch)

    /// Readings kept per window for `twa` and `rate`; past this the series is thinned
    /// (every other interior reading dropped), which bounds state at some cost in precision.
    static let seriesLimit = 4096

    struct TimedReading: Sendable, Equatable {
        var timeMs: Int64
        var value: Double
    }

    static func initial(_ kind: AggregateKind) -> AggregateState {
        switch kind {
        case .countAll, .count: .count(0)
        case .sum: .sum(integer: 0, double: 0, isDouble: false, seen: false)
        case .min, .max: .extreme(.null)
        case .avg: .mean(count: 0, sum: 0)
        case .first: .byTime(timeMs: .max, sequence: .max, value: .null)
        case .last: .byTime(timeMs: .min, sequence: .min, value: .null)
        case .stddev, .stddevPopulation: .moments(count: 0, mean: 0, m2: 0)
        case .timeWeightedAverage, .rate: .series([])
        case .percentile: .sketch(QuantileSketch())
        }
    }

    mutating func add(_ kind: AggregateKind, _ reading: StreamValue, timeMs: Int64, sequence: Int64) {
        switch (self, kind) {
        case (.count(let count), .countAll):
            self = .count(count + 1)
        case (.count(let count), _):
            if !reading.isNull { self = .count(count + 1) }
        case (.sum(var integer, var double, var isDouble, _), _):
            switch reading {
            case .int(let value) where !isDouble:
                let (total, overflow) = integer.addingReportingOverflow(value)
                if overflow {
                    isDouble = true
                    double = Double(integer) + Double(value)
                } else {
                    integer = total
                }
            default:
                guard let value = reading.double else { return }
                if !isDouble {
                    isDouble = true
                    double = Double(integer)
                }
                double += value
            }
            self = .sum(integer: integer, double: double, isDouble: isDouble, seen: true)
        case (.extreme(let current), _):
            guard !reading.isNull else { return }
            if current.isNull {
                self = .extreme(reading)
            } else if let order = StreamValue.compare(reading, current), kind == .min ? order < 0 : order > 0 {
                self = .extreme(reading)
            }
        case (.mean(let count, let sum), _):
            guard let value = reading.double else { return }
            self = .mean(count: count + 1, sum: sum + value)
        case (.byTime(let bestTime, let bestSequence, _), .first):
            guard !reading.isNull else { return }
            if (timeMs, sequence) < (bestTime, bestSequence) { self = .byTime(timeMs: timeMs, sequence: sequence, value: reading) }
        case (.byTime(let bestTime, let bestSequence, _), _):
            guard !reading.isNull else { return }
            if (timeMs, sequence) > (bestTime, bestSequence) { self = .byTime(timeMs: timeMs, sequence: sequence, value: reading) }
        case (.moments(let count, let mean, let m2), _):
            guard let value = reading.double else { return }
            let n = count + 1
            let delta = value - mean
            let newMean = mean + delta / Double(n)
            self = .moments(count: n, mean: newMean, m2: m2 + delta * (value - newMean))
        case (.series(var readings), _):
            guard let value = reading.double else { return }
            // Mostly in order: insert from the end.
            var index = readings.count
            while index > 0 && readings[index - 1].timeMs > timeMs { index -= 1 }
            readings.insert(TimedReading(timeMs: timeMs, value: value), at: index)
            if readings.count > Self.seriesLimit {
                readings = readings.enumerated().filter { $0.offset == 0 || $0.offset == readings.count - 1 || $0.offset % 2 == 0 }.map(\.element)
            }
            self = .series(readings)
        case (.sketch(var sketch), _):
            guard let value = reading.double else { return }
            sketch.add(value)
            self = .sketch(sketch)
        }
    }

    func result(_ kind: AggregateKind) -> StreamValue {
        switch self {
        case .count(let count): return .int(count)
        case .sum(let integer, let double, let isDouble, let seen):
            guard seen else { return .null }
            return isDouble ? .double(double) : .int(integer)
        case .extreme(let value): return value
        case .mean(let count, let sum): return count == 0 ? .null : .double(sum / Double(count))
        case .byTime(_, _, let value): return value
        case .moments(let count, _, let m2):
            if kind == .stddevPopulation { return count == 0 ? .null : .double((m2 / Double(count)).squareRoot()) }
            return count < 2 ? .null : .double((m2 / Double(count - 1)).squareRoot())
        case .series(let readings):
            return kind == .rate ? Self.rate(readings) : Self.timeWeightedAverage(readings)
        case .sketch(let sketch):
            guard case .percentile(let fraction) = kind, let value = sketch.quantile(fraction) else { return .null }
            return .double(value)
        }
    }

    private static func timeWeightedAverage(_ readings: [TimedReading]) -> StreamValue {
        guard let first = readings.first, let last = readings.last else { return .null }
        guard last.timeMs > first.timeMs else { return .double(readings.map(\.value).reduce(0, +) / Double(readings.count)) }
        var area = 0.0
        for index in 0..<(readings.count - 1) {
            area += readings[index].value * Double(readings[index + 1].timeMs - readings[index].timeMs)
        }
        return .double(area / Double(last.timeMs - first.timeMs))
    }

    private static func rate(_ readings: [TimedReading]) -> StreamValue {
        guard readings.count >= 2, let first = readings.first, let last = readings.last, last.timeMs > first.timeMs else {
            return .null
        }
        var increase = 0.0
        for index in 1..<readings.count {
            let previous = readings[index - 1].value
            let current = readings[index].value
            // A counter that went down was reset: it counted `current` since starting again.
            increase += current >= previous ? current - previous : current
        }
        return .double(increase / (Double(last.timeMs - first.timeMs) / 1000))
    }

    /// What this state costs in memory, roughly, for the processor's state bound.
    var estimatedBytes: Int {
        switch self {
        case .count, .sum, .mean, .moments: 24
        case .extreme(let value), .byTime(_, _, let value): 32 + value.estimatedBytes
        case .series(let readings): 32 + readings.count * 16
        case .sketch(let sketch): sketch.estimatedBytes
        }
    }
}

extension StreamValue {
    var estimatedBytes: Int {
        switch self {
        case .string(let text), .json(let text): 16 + text.utf8.count
        default: 9
        }
    }
}
