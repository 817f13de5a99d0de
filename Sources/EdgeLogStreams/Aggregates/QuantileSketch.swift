/// A DDSketch (Masson, Rim and Lee, VLDB 2019): values fall into logarithmic bins whose width
/// gives every quantile a relative error of at most `relativeAccuracy`; at most `maxBins` bins
/// per sign are kept, the lowest being merged first when there are more. Its size is fixed
/// whatever the number of readings, so a percentile never grows a processor's state.
struct QuantileSketch: Sendable, Equatable {
    static let relativeAccuracy = 0.01
    static let maxBins = 1024
    static let gamma = (1 + relativeAccuracy) / (1 - relativeAccuracy)
    static let logGamma = StreamMath.log(gamma)

    var positive: [Int32: Int64] = [:]
    var negative: [Int32: Int64] = [:]
    var zeros: Int64 = 0
    var count: Int64 = 0
    var minimum = Double.infinity
    var maximum = -Double.infinity

    mutating func add(_ value: Double) {
        guard value.isFinite else { return }
        count += 1
        minimum = Swift.min(minimum, value)
        maximum = Swift.max(maximum, value)
        // Magnitudes below 1e-9 count as zero: their bin indexes would be huge and useless.
        if Swift.abs(value) < 1e-9 {
            zeros += 1
        } else if value > 0 {
            Self.insert(Self.index(value), into: &positive)
        } else {
            Self.insert(Self.index(-value), into: &negative)
        }
    }

    private static func index(_ magnitude: Double) -> Int32 {
        Int32((StreamMath.log(magnitude) / logGamma).rounded(.up))
    }

    private static func insert(_ index: Int32, into bins: inout [Int32: Int64]) {
        bins[index, default: 0] += 1
        collapse(&bins)
    }

    /// Merges the lowest bins until at most `maxBins` are left: the low end loses accuracy
    /// first, as in DDSketch.
    static func collapse(_ bins: inout [Int32: Int64]) {
        guard bins.count > maxBins else { return }
        let sorted = bins.keys.sorted()
        let excess = bins.count - maxBins
        let target = sorted[excess]
        for index in sorted[0..<excess] { bins[target, default: 0] += bins.removeValue(forKey: index) ?? 0 }
    }

    private static func value(_ index: Int32) -> Double {
        2 * StreamMath.pow(gamma, Double(index)) / (gamma + 1)
    }

    func quantile(_ fraction: Double) -> Double? {
        guard count > 0 else { return nil }
        // The nearest-rank definition: the reading at position ceil(fraction * count).
        let rank = Swift.max(0, (fraction * Double(count)).rounded(.up) - 1)
        var seen: Int64 = 0
        var result = maximum
        search: do {
            for index in negative.keys.sorted(by: >) {
                seen += negative[index]!
                if Double(seen) > rank { result = -Self.value(index); break search }
            }
            seen += zeros
            if Double(seen) > rank { result = 0; break search }
            for index in positive.keys.sorted() {
                seen += positive[index]!
                if Double(seen) > rank { result = Self.value(index); break search }
            }
        }
        return Swift.min(maximum, Swift.max(minimum, result))
    }

    var estimatedBytes: Int { 64 + (positive.count + negative.count) * 24 }
}
