@testable import EdgeLogServer
import EdgeLogCore
package import EdgeLogMQTT

/// MQTT topic-to-key routing with odd topics and odd filters: the input is a topic, then (after
/// a 0 byte) a filter, then (after another) a key template. The topic goes through the routes
/// of `config/dev.toml`'s kind and, when the filter and template are valid, through a route
/// made of them; a match must render a key from captured levels only.
enum MQTTRouteFuzzer: FuzzTarget {
    static let fixedRouter = MQTTRouter(routes: [
        route("sensors/{device}/#", key: "{device}"),
        route("plant/{site}/+/{device}", key: "{site}-{device}"),
        route("$share/edge/events/#", key: nil),
        route("#", key: "all"),
    ])

    static func route(_ filter: String, key: String?) -> EdgelogConfig.Route {
        let filter = try! TopicFilter(filter)
        return EdgelogConfig.Route(
            filter: filter, topic: "t", key: key.map { try! KeyTemplate($0, captures: filter.captureNames) })
    }

    static func run(_ bytes: UnsafeRawBufferPointer) {
        let parts = bytes.split(separator: 0, maxSplits: 2, omittingEmptySubsequences: false)
            .map { String(decoding: $0, as: UTF8.self) }
        let topic = parts[0]
        _ = fixedRouter.route(topic)
        _ = fixedRouter.owningSubscription(of: topic)
        guard parts.count > 1, let filter = try? TopicFilter(parts[1]) else { return }
        _ = filter.subscription
        let captures = filter.match(topic)
        if let captures {
            precondition(Set(captures.keys).isSubset(of: Set(filter.captureNames)), "captured a level the filter does not name")
        }
        guard parts.count > 2, let template = try? KeyTemplate(parts[2], captures: filter.captureNames) else { return }
        let router = MQTTRouter(routes: [EdgelogConfig.Route(filter: filter, topic: "t", key: template)])
        if let destination = router.route(topic) {
            precondition(captures != nil && destination.key == template.render(captures!), "routed without a match")
        }
        _ = router.subscriptionFilters(connections: 3, sharedGroup: "g")
    }

    static func seeds() -> [(name: String, bytes: [UInt8])] {
        [
            ("device", "sensors/device-1/temp\u{0}sensors/{device}/#\u{0}{device}"),
            ("levels", "plant/north/line-2/d7\u{0}plant/{site}/+/{device}\u{0}{site}/{device}"),
            ("empty-levels", "//a//\u{0}+/+/{x}/#\u{0}k-{x}"),
            ("sys", "$SYS/broker/uptime\u{0}#\u{0}"),
            ("unicode", "sensors/é😀/x\u{0}sensors/{d}\u{0}{d}{d}"),
        ].map { ($0.0, Array($0.1.utf8)) }
    }
}
