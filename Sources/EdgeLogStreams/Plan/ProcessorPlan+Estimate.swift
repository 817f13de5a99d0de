extension ProcessorPlan {
    /// One key's state at its largest, from the query alone: the windows a key can have open
    /// at once (those the watermark has not closed, plus those kept for late updates), each
    /// with every aggregate at its bound (a sketch's bins, a series' readings), and the key
    /// itself. Keys and strings are taken at 32 bytes, a guess that real keys may exceed.
    func estimateKeyBytes() -> Int {
        let keyBytes = 96 + 32 + 25
        switch shape {
        case .stateless:
            guard let filters = keyFilters else { return 0 }
            // DEDUPE keeps the ids of its time span; a hundred is a guess, and the byte bound
            // holds whatever the real number.
            return keyBytes + (filters.dedupeId != nil ? 100 * 56 : 0) + 48
        case .aggregate(_, let aggregates, let window, _, _):
            var windowBytes = 64
            for aggregate in aggregates {
                switch aggregate.kind {
                case .countAll, .count, .sum, .avg, .stddev, .stddevPopulation: windowBytes += 24
                case .min, .max, .first, .last: windowBytes += 32 + 48
                case .timeWeightedAverage, .rate: windowBytes += 32 + AggregateState.seriesLimit * 16
                case .percentile: windowBytes += 64 + 2 * QuantileSketch.maxBins * 24
                }
            }
            let reach = outOfOrderMs + graceMs + (latePolicy.retentionMs ?? 0)
            let windows: Int
            switch window {
            case nil, .count?: windows = 1
            case .tumbling(let size, _)?: windows = 1 + Int((reach + size.milliseconds - 1) / size.milliseconds)
            case .hopping(let size, let advance, _)?:
                windows = Int((size.milliseconds + reach + advance.milliseconds - 1) / advance.milliseconds)
            case .session(let gap, _)?: windows = 1 + Int((reach + gap.milliseconds - 1) / gap.milliseconds)
            }
            return keyBytes + windows * windowBytes
        }
    }
}

extension ProcessorPlan.LatePolicy {
    var retentionMs: Int64? {
        if case .update(let retention) = self { return retention }
        return nil
    }
}
