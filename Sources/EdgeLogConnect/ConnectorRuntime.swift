public import EdgeLogCore
public import Logging
public import ServiceLifecycle
import Synchronization

/// Every connector of the daemon: those of the configuration file and those made through the
/// API (persisted in the data directory), each supervised by its `ConnectorInstance`. A
/// connector that cannot start or reach its peer never stops the daemon or the others.
public final class ConnectorRuntime: Service, Sendable {
    public struct Tuning: Sendable {
        public var restartBackoffMinMs: Int64 = 1_000
        public var restartBackoffMaxMs: Int64 = 60_000
        /// A task that ran this long before failing starts the backoff over.
        public var healthyRunMs: Int64 = 60_000
        /// How long a new task must run before it is reported RUNNING (before, RESTARTING or
        /// UNASSIGNED): one that fails at once is never reported RUNNING.
        public var startGraceMs: Int64 = 1_000
        public init() {}
    }

    let families: [ConnectorType: any ConnectorFamily]
    let store: ConnectorStore
    let logger: Logger
    let environment: [String: String]
    let tuning: Tuning
    /// Kafka Connect's `worker_id` in statuses: the address of the API.
    public let workerId: String

    struct Registry {
        var instances: [String: ConnectorInstance] = [:]
        var supervisors: [String: Task<Void, Never>] = [:]
        /// False before `run` and after it stopped: supervisors start when it runs.
        var running = false
        var stopped = false
    }

    let registry = Mutex(Registry())

    public init(
        families: [any ConnectorFamily], fileConnectors: [ConnectorSpec], dataDirectory: String, workerId: String,
        environment: [String: String] = [:], tuning: Tuning = Tuning(), logger: Logger
    ) {
        self.families = Dictionary(families.map { ($0.type, $0) }, uniquingKeysWith: { $1 })
        self.store = ConnectorStore(dataDirectory: dataDirectory)
        self.workerId = workerId
        self.environment = environment
        self.tuning = tuning
        var logger = logger
        logger[metadataKey: "edgelog.part"] = "connect"
        self.logger = logger
        load(fileConnectors: fileConnectors)
    }

    /// The file's connectors, with any target state persisted for them, then the API's.
    private func load(fileConnectors: [ConnectorSpec]) {
        let stored = store.load { path, problem in
            logger.error("cannot read a stored connector; skipped", metadata: ["edgelog.path": "\(path)", "edgelog.error": "\(problem)"])
        }
        let targets = Dictionary(stored.map { ($0.name, $0.state) }, uniquingKeysWith: { $1 })
        var instances: [String: ConnectorInstance] = [:]
        for spec in fileConnectors {
            guard let family = families[spec.type] else { continue }
            instances[spec.name] = makeInstance(spec, target: targets[spec.name] ?? .running, family: family)
        }
        for entry in stored where entry.config != nil {
            guard instances[entry.name] == nil else {
                logger.warning(
                    "a connector made through the API has the name of one in the configuration file; the file's is used",
                    metadata: ["edgelog.connector": "\(entry.name)"])
                continue
            }
            do {
                guard let typeName = entry.type, let type = ConnectorType(rawValue: typeName), let family = families[type] else {
                    throw ConnectorRuntimeError(.badRequest, "unknown_type", "unknown connector type '\(entry.type ?? "")'")
                }
                let spec = try ConnectorType.parse(
                    name: entry.name, type: type, config: entry.config ?? .init(), origin: .api, environment: environment)
                instances[entry.name] = makeInstance(spec, target: entry.state, family: family)
            } catch {
                logger.error(
                    "a stored connector no longer validates; not started",
                    metadata: ["edgelog.connector": "\(entry.name)", "edgelog.error": "\(error)"])
            }
        }
        registry.withLock { $0.instances = instances }
        for instance in instances.values { instance.family.adopted(instance.state.withLock { $0.spec }) }
    }

    func makeInstance(_ spec: ConnectorSpec, target: ConnectorTargetState, family: any ConnectorFamily) -> ConnectorInstance {
        ConnectorInstance(spec: spec, target: target, family: family, tuning: tuning, logger: logger)
    }

    public func run() async throws {
        let instances = registry.withLock { registry in
            registry.running = true
            return Array(registry.instances.values)
        }
        for instance in instances { startSupervisor(instance) }
        logger.info("connectors started", metadata: ["edgelog.connectors": "\(instances.count)"])
        try? await gracefulShutdown()
        let supervisors = registry.withLock { registry in
            registry.running = false
            registry.stopped = true
            return Array(registry.supervisors.values)
        }
        // Every connector stops at once (each finishes what it holds: PUBACKs, checkpoints).
        for supervisor in supervisors { supervisor.cancel() }
        for supervisor in supervisors { await supervisor.value }
        logger.info("connectors stopped")
    }

    func startSupervisor(_ instance: ConnectorInstance) {
        registry.withLock { registry in
            guard registry.running, registry.supervisors[instance.name] == nil else { return }
            registry.supervisors[instance.name] = Task { await instance.supervise() }
        }
    }

    func instance(_ name: String) throws(ConnectorRuntimeError) -> ConnectorInstance {
        guard let instance = registry.withLock({ $0.instances[name] }) else { throw .connectorNotFound(name) }
        return instance
    }

    /// Names in order.
    public var names: [String] { registry.withLock { $0.instances.keys.sorted() } }

    public func status(_ name: String) throws(ConnectorRuntimeError) -> ConnectorStatus { try instance(name).status() }

    public func statuses() -> [ConnectorStatus] {
        registry.withLock { Array($0.instances.values) }.map { $0.status() }.sorted { $0.name < $1.name }
    }

    public func spec(_ name: String) throws(ConnectorRuntimeError) -> ConnectorSpec {
        try instance(name).state.withLock { $0.spec }
    }
}
