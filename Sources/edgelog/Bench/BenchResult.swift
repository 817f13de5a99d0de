/// One line of `edgelog bench`'s report: a measurement, the reference it is compared with
/// (measured in the same run on the same machine), their ratio and the target.
struct BenchResult {
    var name: String
    var value: Double
    var unit: String
    var reference: String?
    var referenceValue: Double?
    /// The reference's unit when it differs from the result's (fsyncs/s against records/s).
    var referenceUnit: String?
    var target: String?
    var note: String?

    var ratio: Double? {
        guard let referenceValue, referenceValue > 0 else { return nil }
        return value / referenceValue
    }

    /// Collects a run's results, printing each as it comes (benchmarks take minutes).
    struct Report {
        private(set) var results: [BenchResult] = []

        mutating func add(_ result: BenchResult) {
            results.append(result)
            let ratio = result.ratio.map { String(format: " (%.2f × ", $0) + (result.reference ?? "") + ")" } ?? ""
            print("\(result.name): \(BenchResult.format(result.value)) \(result.unit)" + ratio)
        }

        func printTable() {
            print("")
            print(BenchResult.markdownTable(results))
        }
    }

    static func markdownTable(_ results: [BenchResult]) -> String {
        var lines = [
            "| benchmark | result | reference (same run) | ratio | target | note |",
            "|---|---|---|---|---|---|",
        ]
        for result in results {
            let reference = result.reference.map { name in
                "\(name): \(format(result.referenceValue ?? 0)) \(result.referenceUnit ?? result.unit)"
            } ?? "-"
            let ratio = result.ratio.map { String(format: "%.2f", $0) } ?? "-"
            lines.append(
                "| \(result.name) | \(format(result.value)) \(result.unit) | \(reference) | \(ratio) | \(result.target ?? "-") | \(result.note ?? "") |")
        }
        return lines.joined(separator: "\n")
    }

    static func format(_ value: Double) -> String {
        if value >= 100 { return String(format: "%.0f", value) }
        if value >= 1 { return String(format: "%.2f", value) }
        return String(format: "%.4f", value)
    }
}

import Foundation
