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
