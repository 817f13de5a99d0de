extension AggregateState {
    /// This state with `other`'s readings added, as if both had been read into one window:
    /// how session windows merge when a record bridges two of them.
    func merged(with other: AggregateState, _ kind: AggregateKind) -> AggregateState {
        switch (self, other) {
        case (.count(let a), .count(let b)): return .count(a + b)
        case (.sum(let ai, let ad, let aDouble, let aSeen), .sum(let bi, let bd, let bDouble, let bSeen)):
            if !aDouble && !bDouble {
                let (total, overflow) = ai.addingReportingOverflow(bi)
                if !overflow { return .sum(integer: total, double: 0, isDouble: false, seen: aSeen || bSeen) }
            }
            let a = aDouble ? ad : Double(ai)
            let b = bDouble ? bd : Double(bi)
            return .sum(integer: 0, double: a + b, isDouble: true, seen: aSeen || bSeen)
        case (.extreme(let a), .extreme(let b)):
            if a.isNull { return other }
            if b.isNull { return self }
            guard let order = StreamValue.compare(b, a) else { return self }
            return (kind == .min ? order < 0 : order > 0) ? other : self
        case (.mean(let an, let asum), .mean(let bn, let bsum)): return .mean(count: an + bn, sum: asum + bsum)
        case (.byTime(let at, let aseq, let av), .byTime(let bt, let bseq, let bv)):
            if av.isNull { return other }
            if bv.isNull { return self }
            let bWins = kind == .first ? (bt, bseq) < (at, aseq) : (bt, bseq) > (at, aseq)
            return bWins ? other : self
        case (.moments(let an, let amean, let am2), .moments(let bn, let bmean, let bm2)):
            // Chan et al.'s parallel combination of running means and squared differences.
            guard an > 0 else { return other }
            guard bn > 0 else { return self }
            let n = an + bn
            let delta = bmean - amean
            let mean = amean + delta * Double(bn) / Double(n)
            let m2 = am2 + bm2 + delta * delta * Double(an) * Double(bn) / Double(n)
            return .moments(count: n, mean: mean, m2: m2)
        case (.series(let a), .series(let b)):
            var merged: [TimedReading] = []
            merged.reserveCapacity(a.count + b.count)
            var i = 0
            var j = 0
            while i < a.count || j < b.count {
                if j >= b.count || (i < a.count && a[i].timeMs <= b[j].timeMs) {
                    merged.append(a[i])
                    i += 1
                } else {
                    merged.append(b[j])
                    j += 1
                }
            }
            while merged.count > Self.seriesLimit {
                merged = merged.enumerated().filter { $0.offset == 0 || $0.offset == merged.count - 1 || $0.offset % 2 == 0 }.map(\.element)
            }
            return .series(merged)
        case (.sketch(var a), .sketch(let b)):
            a.merge(b)
            return .sketch(a)
        default:
            return self
        }
    }
}

extension QuantileSketch {
    mutating func merge(_ other: QuantileSketch) {
        guard other.count > 0 else { return }
        for (index, count) in other.positive { positive[index, default: 0] += count }
        for (index, count) in other.negative { negative[index, default: 0] += count }
        zeros += other.zeros
        self.count += other.count
        minimum = Swift.min(minimum, other.minimum)
        maximum = Swift.max(maximum, other.maximum)
        Self.collapse(&positive)
        Self.collapse(&negative)
    }
}
