public import EdgeLogConnect
public import EdgeLogCore
public import Logging

/// The `mqtt-source` connector type: each instance is one broker connection (or several
/// sharing the routes) with its routes, run by an `MQTTIngestService`.
package struct MQTTSourceFamily: ConnectorFamily {
    let ingestor: Ingestor
    let stateDirectory: String?
    let loss: LossRecorder?
    let logger: Logger
    /// The running services, for `/v1/status`' mqtt section.
    let services: MQTTServices

    package init(ingestor: Ingestor, stateDirectory: String?, loss: LossRecorder?, services: MQTTServices, logger: Logger) {
        self.ingestor = ingestor
        self.stateDirectory = stateDirectory
        self.loss = loss
        self.services = services
        self.logger = logger
    }

    package var type: ConnectorType { .mqttSource }

    package func makeTask(_ spec: ConnectorSpec) throws -> any ConnectorTask {
        guard case .mqtt(var broker, let routes) = spec.settings else { preconditionFailure("not an mqtt-source: \(spec.type)") }
        broker.name = spec.name
        let service = MQTTIngestService(
            broker: broker, routes: routes, ingestor: ingestor, stateDirectory: stateDirectory, loss: loss, logger: logger)
        return MQTTSourceTask(service: service, services: services)
    }

    static func broker(_ spec: ConnectorSpec) -> EdgelogConfig.Broker {
        guard case .mqtt(var broker, _) = spec.settings else { preconditionFailure("not an mqtt-source: \(spec.type)") }
        broker.name = spec.name
        return broker
    }

    /// The position of an mqtt-source is held by the broker: one persistent session per
    /// connection (its subscriptions, and the QoS 1 messages queued while edgelog is away).
    package func offsets(_ spec: ConnectorSpec) throws -> [ConnectorOffset] {
        let broker = Self.broker(spec)
        return MQTTRouter.clientIds(clientId: broker.clientId, connections: broker.connections).map { clientId in
            ConnectorOffset(
                partition: ["broker": .string("\(broker.host):\(broker.port)"), "client_id": .string(clientId)],
                offset: ["session": .string("persistent, held by the broker")])
        }
    }

    /// Only a reset: the broker forgets the sessions (and what it queued for them), and the
    /// next start subscribes afresh.
    package func alterOffsets(_ spec: ConnectorSpec, to offsets: [ConnectorOffset]?) throws -> String {
        guard offsets == nil else {
            throw ConnectorRuntimeError(
                .badRequest, "offsets_not_settable",
                "an mqtt-source's position is the broker's session; it can only be reset (DELETE .../offsets)")
        }
        let broker = Self.broker(spec)
        let clientIds = MQTTRouter.clientIds(clientId: broker.clientId, connections: broker.connections)
        do {
            for clientId in clientIds { try MQTTSessionReset.forget(broker: broker, clientId: clientId) }
        } catch {
            throw ConnectorRuntimeError(.unavailable, "broker_unreachable", error.description)
        }
        return "the broker \(broker.host):\(broker.port) dropped the sessions of \(clientIds.joined(separator: ", ")) and what it had queued for them"
    }

    package func removed(_ spec: ConnectorSpec, keepOffsets: Bool) {
        guard !keepOffsets else { return }
        do {
            let done = try alterOffsets(spec, to: nil)
            logger.info("\(done)")
        } catch {
            logger.error(
                "a deleted mqtt-source's broker session could not be dropped; the broker keeps queuing for it",
                metadata: ["edgelog.connector": "\(spec.name)", "edgelog.error": "\(error)"])
        }
    }

    /// Same broker settings, routes subscribing to the same filters: the routes change in
    /// place, without a reconnect.
    package func reconfigure(_ task: any ConnectorTask, to spec: ConnectorSpec) -> Bool {
        guard let task = task as? MQTTSourceTask, case .mqtt(var broker, let routes) = spec.settings else { return false }
        broker.name = spec.name
        guard broker == task.service.broker else { return false }
        return task.service.reload(routes: routes)
    }
}

/// A running `mqtt-source`: the service runs until the connector stops.
struct MQTTSourceTask: ConnectorTask {
    let service: MQTTIngestService
    let services: MQTTServices

    func run() async throws {
        services.add(service)
        defer { services.remove(service) }
        try await service.run()
    }

    func health() -> ConnectorHealth {
        let lastStored = service.lastStoredMs.load(ordering: .relaxed)
        var health = ConnectorHealth(lastSuccessMs: lastStored > 0 ? lastStored : nil)
        if let problem = service.connectionProblem.withLock({ $0 }) {
            health.problem = "cannot reach the MQTT broker \(service.broker.host):\(service.broker.port): \(problem.reason)"
            health.problemSinceMs = problem.sinceMs
            health.retries = problem.attempts
        }
        return health
    }

    func counters() -> ConnectorCounters {
        let statistics = service.statistics
        var counters = ConnectorCounters()
        counters.recordsIn = Int64(statistics.stored)
        counters.bytesIn = Int64(service.storedBytes.load(ordering: .relaxed))
        if statistics.failed > 0 { counters.errors["storage"] = Int64(statistics.failed) }
        if statistics.unrouted > 0 { counters.errors["unroutable"] = Int64(statistics.unrouted) }
        let attempts = service.connectionProblem.withLock { $0?.attempts ?? 0 }
        if attempts > 0 { counters.errors["connection"] = Int64(attempts) }
        return counters
    }
}
