/// The aggregates a grouped query may use. `first` and `last` go by event time (ties by the
/// order records were read), not by arrival, so a late reading never replaces a newer one.
enum AggregateKind: Sendable, Equatable {
    case countAll
    case count
    case sum
    case min
    case max
    case avg
    case first
    case last
    /// Sample standard deviation (n - 1), as STDDEV_SAMP.
    case stddev
    case stddevPopulation
    /// Time-weighted average: each value holds until the next reading (a step function).
    case timeWeightedAverage
    /// Per-second increase of a counter; a decrease is a reset (the counter started again).
    case rate
    /// The value below which `fraction` of the readings fall, from a fixed-size sketch.
    case percentile(fraction: Double)

    init?(sqlName: String, arguments: [SQLExpression]) {
        switch sqlName {
        case "COUNT": self = arguments == [.star] || arguments.isEmpty ? .countAll : .count
        case "SUM": self = .sum
        case "MIN": self = .min
        case "MAX": self = .max
        case "AVG", "MEAN": self = .avg
        case "FIRST", "EARLIEST", "EARLIEST_BY_TIME": self = .first
        case "LAST", "LATEST", "LATEST_BY_TIME": self = .last
        case "STDDEV", "STDDEV_SAMP", "STDEV": self = .stddev
        case "STDDEV_POP", "STDEVP": self = .stddevPopulation
        case "TWA", "TIME_WEIGHTED_AVG", "TIME_WEIGHTED_AVERAGE": self = .timeWeightedAverage
        case "RATE": self = .rate
        case "PERCENTILE", "PERCENTILE_APPROX", "PERCENTILE_CONT", "QUANTILE":
            // The fraction is checked by AggregateSpec; a placeholder until then.
            self = .percentile(fraction: .nan)
        default: return nil
        }
    }

    var name: String {
        switch self {
        case .countAll, .count: "count"
        case .sum: "sum"
        case .min: "min"
        case .max: "max"
        case .avg: "avg"
        case .first: "first"
        case .last: "last"
        case .stddev: "stddev"
        case .stddevPopulation: "stddev_pop"
        case .timeWeightedAverage: "twa"
        case .rate: "rate"
        case .percentile: "percentile"
        }
    }
}

/// One aggregate of a query: its kind and the expression it reads from each record.
struct AggregateSpec: Sendable, Equatable {
    var kind: AggregateKind
    /// What is aggregated; nil for count(*).
    var argument: CompiledExpression?

    init(kind: AggregateKind, arguments: [CompiledExpression]) throws(StreamPlanError) {
        var kind = kind
        switch kind {
        case .countAll:
            guard arguments.isEmpty else { throw StreamPlanError("count(*) takes no other argument") }
            argument = nil
        case .percentile:
            guard arguments.count == 2, case .constant(let fractionValue) = arguments[1], var fraction = fractionValue.double else {
                throw StreamPlanError("percentile(x, p) takes a value and a constant p between 0 and 1 (or 0 and 100)")
            }
            if fraction > 1 && fraction <= 100 { fraction /= 100 }
            guard fraction >= 0 && fraction <= 1 else {
                throw StreamPlanError("percentile's p must be between 0 and 1 (or 0 and 100), not \(fractionValue.text)")
            }
            kind = .percentile(fraction: fraction)
            argument = arguments[0]
        default:
            guard arguments.count == 1 else { throw StreamPlanError("\(kind.name)() takes one argument, not \(arguments.count)") }
            argument = arguments[0]
        }
        self.kind = kind
    }
}
