@testable import EdgeLogServer
import EdgeLogStorage
import Testing
@testable import EdgeLogCore
@testable import EdgeLogMQTT

func mqttRoute(_ filter: String, _ topic: String, key: String? = nil) throws -> EdgelogConfig.Route {
    let filter = try TopicFilter(filter)
    return EdgelogConfig.Route(filter: filter, topic: topic, key: try key.map { try KeyTemplate($0, captures: filter.captureNames) })
}

/// Routing, subscriptions and client ids: no broker needed.
@Suite struct MQTTRouterTests {
    let router: MQTTRouter

    init() throws {
        router = MQTTRouter(routes: [
            try mqttRoute("sensors/{site}/{device}/temperature", "temperatures", key: "{site}-{device}"),
            try mqttRoute("sensors/{site}/{device}/#", "sensors", key: "{device}"),
            try mqttRoute("events/#", "events"),
            try mqttRoute("events/+", "never-reached"),
            try mqttRoute("sensors/{a}/{b}/#", "duplicate-subscription"),
        ])
    }

    @Test func theFirstMatchingRouteWinsAndBuildsTheKeyFromLevels() {
        #expect(
            router.route("sensors/plant-3/pump-7/temperature")
                == .init(topic: "temperatures", key: "plant-3-pump-7"))
        #expect(router.route("sensors/plant-3/pump-7/pressure/raw") == .init(topic: "sensors", key: "pump-7"))
        // `#` also matches the parent level.
        #expect(router.route("sensors/plant-3/pump-7") == .init(topic: "sensors", key: "pump-7"))
        #expect(router.route("events/door") == .init(topic: "events", key: nil))
        #expect(router.route("events") == .init(topic: "events", key: nil))
    }

    @Test func topicsNoRouteMatchesGoNowhere() {
        #expect(router.route("sensors/plant-3") == nil)
        #expect(router.route("other/topic") == nil)
        #expect(router.route("") == nil)
        // Wildcard-led filters do not match `$` topics, as in MQTT.
        #expect(MQTTRouter(routes: [try! mqttRoute("#", "all")]).route("$SYS/broker/uptime") == nil)
    }

    @Test func subscriptionsAreTheDistinctFiltersInRouteOrder() {
        #expect(router.subscriptions == ["sensors/+/+/temperature", "sensors/+/+/#", "events/#", "events/+"])
        #expect(router.subscriptionFilters(connections: 1, sharedGroup: "edgelog") == router.subscriptions)
        #expect(
            router.subscriptionFilters(connections: 3, sharedGroup: "g1")
                == ["$share/g1/sensors/+/+/temperature", "$share/g1/sensors/+/+/#", "$share/g1/events/#", "$share/g1/events/+"])
    }

    @Test func aMessageIsOwnedByTheFirstSubscriptionThatMatchesIt() {
        #expect(router.owningSubscription(of: "sensors/a/b/temperature") == 1)
        #expect(router.owningSubscription(of: "sensors/a/b/pressure") == 2)
        #expect(router.owningSubscription(of: "events/door") == 3)
        #expect(router.owningSubscription(of: "nowhere") == nil)
    }

    @Test func clientIdsAreNumberedOnlyWithSeveralConnections() {
        #expect(MQTTRouter.clientIds(clientId: "edgelog", connections: 1) == ["edgelog"])
        #expect(MQTTRouter.clientIds(clientId: "edgelog", connections: 0) == ["edgelog"])
        #expect(MQTTRouter.clientIds(clientId: "box-7", connections: 3) == ["box-7-1", "box-7-2", "box-7-3"])
    }

    @Test func reloadTakesNewTopicsAndKeysButNotNewSubscriptions() throws {
        let service = MQTTIngestService(
            broker: EdgelogConfig.Broker(name: "local"), routes: [try mqttRoute("a/{x}", "one", key: "{x}")],
            sink: RejectingSink(), logger: mqttTestLogger)
        #expect(service.reload(routes: [try mqttRoute("a/{y}", "two")]))
        #expect(service.router.route("a/b") == .init(topic: "two", key: nil))
        #expect(!service.reload(routes: [try mqttRoute("b/+", "three")]))
        #expect(service.router.route("a/b") == .init(topic: "two", key: nil))
    }

    @Test func onlyFailuresARetryCannotFixArePermanent() {
        #expect(MQTTIngestService.isPermanent(.recordTooLarge(index: 0, bytes: 2, maxBytes: 1)))
        #expect(MQTTIngestService.isPermanent(.unknownTopic("t")))
        #expect(MQTTIngestService.isPermanent(.invalidTopic("a/b", reason: "slash")))
        #expect(!MQTTIngestService.isPermanent(.storage(.diskBudgetExceeded(usedBytes: 2, budgetBytes: 1))))
        #expect(!MQTTIngestService.isPermanent(.storage(.diskFull(path: "/data"))))
        #expect(!MQTTIngestService.isPermanent(.storage(.partitionFenced(partition: "t-0", reason: "fsync"))))
        #expect(!MQTTIngestService.isPermanent(.storage(.closed)))
    }

    @Test func recordsCarryThePayloadAsIsAndTheMQTTHeaders() throws {
        let service = MQTTIngestService(
            broker: EdgelogConfig.Broker(name: "local"), routes: [], sink: RejectingSink(), logger: mqttTestLogger)
        let payload: [UInt8] = [0, 0xff, 0, 10, 13, 0]
        let record = payload.withUnsafeBytes { bytes in
            service.makeRecord(.init(topic: "sensors/a/b", payload: bytes, qos: 1, retain: true), key: "b")
        }
        #expect(record.valueBytes == payload)
        #expect(record.keyText == "b")
        #expect(record.headerText("mqtt.topic") == "sensors/a/b")
        #expect(record.headerText("mqtt.qos") == "1")
        #expect(record.headerText("mqtt.retain") == "true")
        let empty = service.makeRecord(
            .init(topic: "t", payload: UnsafeRawBufferPointer(start: nil, count: 0), qos: 0, retain: false), key: nil)
        #expect(empty.value != nil && empty.valueBytes.isEmpty)
        #expect(empty.key == nil)
        #expect(empty.headerText("mqtt.qos") == "0" && empty.headerText("mqtt.retain") == "false")
    }

    @Test func aClientWithTLSFilesThatDoNotExistFailsAtSetUp() {
        var configuration = MQTTClient.Configuration(host: "127.0.0.1", port: 8883, clientId: "tls-test")
        configuration.tlsCAFile = "/nonexistent/ca.crt"
        #expect(throws: MQTTClientError.self) {
            _ = try MQTTClient(configuration: configuration, logger: mqttTestLogger, onMessage: { _ in .acknowledge })
        }
    }
}

/// A sink that refuses everything, for tests that never append.
struct RejectingSink: MQTTRecordSink {
    func append(topic: String, records: [Record]) async throws(IngestError) -> [RecordPosition] {
        throw .storage(.closed)
    }
}
