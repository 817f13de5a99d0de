public import EdgeLogCore
/// The MQTT routes of the configuration as a lookup: which log topic and key a message goes
/// to, and what to subscribe to. Pure; no I/O.
///
/// - A message goes to the first route (in configuration order) whose filter matches its
///   MQTT topic; the key is the route's template rendered with the filter's captures, or nil
///   when the route has none.
/// - Subscriptions are the routes' filters with captures turned into `+`, without repeats, in
///   route order; subscription identifier i + 1 is `subscriptions[i]`. With several
///   connections each is subscribed as the shared subscription `$share/<group>/<filter>`.
/// - Overlapping filters (`sensors/#` and `sensors/+/temperature`) make an MQTT v5 broker
///   deliver one copy of a message per matching subscription. A message is stored from the
///   copy delivered for its owning subscription, the first one whose filter matches its topic
///   (`owningSubscription(of:)`, checked against `MQTTClient.Message.isDelivered`); the other
///   copies are acknowledged and dropped. (A subscription left in the persistent session by
///   an earlier configuration keeps its old identifier; if that happens to equal the owner's
///   new one, its copies are stored too.)
package struct MQTTRouter: Sendable {
    package struct Destination: Sendable, Equatable {
        var topic: String
        package var key: String?
    }

    let routes: [EdgelogConfig.Route]
    /// Distinct subscription filters, in route order.
    let subscriptions: [String]
    private let subscriptionFilters: [TopicFilter]

    package init(routes: [EdgelogConfig.Route]) {
        self.routes = routes
        var subscriptions: [String] = []
        var filters: [TopicFilter] = []
        for route in routes {
            let subscription = route.filter.subscription
            guard !subscriptions.contains(subscription) else { continue }
            subscriptions.append(subscription)
            // A filter's subscription is a valid filter without captures.
            filters.append(try! TopicFilter(subscription))
        }
        self.subscriptions = subscriptions
        self.subscriptionFilters = filters
    }

    /// Where a message published to `topic` goes, or nil when no route matches.
    package func route(_ topic: String) -> Destination? {
        for route in routes {
            guard let captures = route.filter.match(topic) else { continue }
            return Destination(topic: route.topic, key: route.key?.render(captures))
        }
        return nil
    }

    /// The identifier of the subscription a message on `topic` is stored from: the first
    /// subscription whose filter matches it.
    package func owningSubscription(of topic: String) -> Int? {
        subscriptionFilters.firstIndex { $0.match(topic) != nil }.map { $0 + 1 }
    }

    /// The filters a connection subscribes to: plain with one connection, shared
    /// subscriptions in `group` with more.
    package func subscriptionFilters(connections: Int, sharedGroup group: String) -> [String] {
        connections > 1 ? subscriptions.map { "$share/\(group)/\($0)" } : subscriptions
    }

    /// Client ids: `clientId` for one connection, `clientId-1` … `clientId-n` for more. Each
    /// connection has its own persistent session, so these must stay the same across restarts.
    static func clientIds(clientId: String, connections: Int) -> [String] {
        connections <= 1 ? [clientId] : (1...connections).map { "\(clientId)-\($0)" }
    }
}
