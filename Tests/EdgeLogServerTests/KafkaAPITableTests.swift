import EdgeLogKafka
import Foundation
import Testing

@testable import EdgeLogServer
@testable import EdgeLogKafkaListener

/// README's table of Kafka APIs is what ApiVersions advertises: an API listed is served in
/// exactly the versions shown, and no served API is missing from it.
@Suite struct KafkaAPITableTests {
    @Test func theReadmeTableMatchesTheAdvertisedVersions() throws {
        let readme = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("README.md")
        let text = try String(contentsOf: readme, encoding: .utf8)
        let row = /^\| [A-Za-z]+ \((\d+)\) \| (\d+)(?:-(\d+))? \|/
        var documented: [Int16: ClosedRange<Int16>] = [:]
        for line in text.split(separator: "\n") {
            guard let match = try row.firstMatch(in: String(line)) else { continue }
            let key = Int16(match.1)!
            let low = Int16(match.2)!
            documented[key] = low...(match.3.map { Int16($0)! } ?? low)
        }
        let advertised = Dictionary(uniqueKeysWithValues: KafkaBroker.supportedVersions.map { ($0.key.rawValue, $0.value) })
        #expect(documented == advertised)
    }
}
