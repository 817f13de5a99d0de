public import EdgeLogCore
import Logging

/// What the REST API and the CLI do to connectors. Each operation validates first and
/// changes nothing when it refuses.
extension ConnectorRuntime {
    /// `POST /connectors` and `PUT /connectors/{name}/config` for a new name.
    @discardableResult
    public func create(name: String, config: ConnectorConfig) throws(ConnectorRuntimeError) -> ConnectorSpec {
        let (type, config) = try Self.split(config)
        let spec = try parse(name: name, type: type, config: config)
        guard let family = families[type] else { throw ConnectorRuntimeError(.badRequest, "unknown_type", "no \(type.rawValue) connectors in this daemon") }
        let instance = makeInstance(spec, target: .running, family: family)
        try registry.withLock { (registry) throws(ConnectorRuntimeError) in
            guard !registry.stopped else { throw ConnectorRuntimeError(.unavailable, "shutting_down", "the daemon is stopping") }
            guard registry.instances[name] == nil else {
                throw ConnectorRuntimeError(.conflict, "connector_exists", "a connector named '\(name)' exists already")
            }
            registry.instances[name] = instance
        }
        do {
            try store.save(.init(name: name, type: type.rawValue, config: config, state: .running))
        } catch {
            _ = registry.withLock { $0.instances.removeValue(forKey: name) }
            throw ConnectorRuntimeError(.unavailable, "not_persisted", "cannot save the connector: \(error)")
        }
        family.adopted(spec)
        logger.info("connector created", metadata: ["edgelog.connector": "\(name)", "edgelog.connector.type": "\(type.rawValue)"])
        startSupervisor(instance)
        return spec
    }

    /// `PUT /connectors/{name}/config`: replaces the configuration of a connector made
    /// through the API (restarting it), or creates it. Returns whether it was created.
    @discardableResult
    public func put(name: String, config: ConnectorConfig) throws(ConnectorRuntimeError) -> Bool {
        guard let instance = registry.withLock({ $0.instances[name] }) else {
            try create(name: name, config: config)
            return true
        }
        let current = instance.state.withLock { $0.spec }
        try Self.refuseFileConnector(current, "change its configuration")
        var config = config
        if config["connector.class"] == nil && config["type"] == nil { config["type"] = .string(current.type.rawValue) }
        let (type, given) = try Self.split(config)
        guard type == current.type else {
            throw ConnectorRuntimeError(
                .conflict, "type_change",
                "connector '\(name)' is a \(current.type.rawValue); delete it and create a \(type.rawValue) instead")
        }
        let spec = try parse(name: name, type: type, config: given)
        let target = instance.state.withLock { $0.target }
        do { try store.save(.init(name: name, type: type.rawValue, config: given, state: target)) } catch {
            throw ConnectorRuntimeError(.unavailable, "not_persisted", "cannot save the connector: \(error)")
        }
        apply(spec, to: instance)
        logger.info("connector reconfigured", metadata: ["edgelog.connector": "\(name)"])
        return false
    }

    /// `PATCH /connectors/{name}/config`: keys set to a value replace, keys set to null go.
    public func patch(name: String, changes: [String: ConnectorConfig.Value?]) throws(ConnectorRuntimeError) {
        var config = try spec(name).config
        for (key, value) in changes.sorted(by: { $0.key < $1.key }) { config[key] = value }
        try put(name: name, config: config)
    }

    /// A new configuration for a known connector: in place when its family can, else the task
    /// restarts with it.
    func apply(_ spec: ConnectorSpec, to instance: ConnectorInstance) {
        let task = instance.state.withLock { state in
            state.spec = spec
            return state.task
        }
        if let task, instance.family.reconfigure(task, to: spec) { return }
        instance.update { $0.restartRequested = true }
    }

    public func pause(_ name: String) throws(ConnectorRuntimeError) { try setTarget(name, .paused) }
    public func resume(_ name: String) throws(ConnectorRuntimeError) { try setTarget(name, .running) }
    public func stop(_ name: String) throws(ConnectorRuntimeError) { try setTarget(name, .stopped) }

    private func setTarget(_ name: String, _ target: ConnectorTargetState) throws(ConnectorRuntimeError) {
        let instance = try instance(name)
        let spec = instance.state.withLock { $0.spec }
        let entry: ConnectorStore.Entry
        if case .file = spec.origin {
            entry = .init(name: name, state: target)
        } else {
            entry = .init(name: name, type: spec.type.rawValue, config: spec.config, state: target)
        }
        do {
            // A file connector back to RUNNING needs no file of its own.
            if case .file = spec.origin, target == .running { try store.remove(name) } else { try store.save(entry) }
        } catch {
            throw ConnectorRuntimeError(.unavailable, "not_persisted", "cannot save the connector's state: \(error)")
        }
        instance.update { state in
            if target == .running && state.target != .running { state.consecutiveFailures = 0 }
            state.target = target
        }
        logger.info("connector target state changed", metadata: ["edgelog.connector": "\(name)", "edgelog.state": "\(target.rawValue)"])
    }

    /// `POST /connectors/{name}/restart`: a new task now, and the backoff starts over.
    /// `onlyFailed`: only when it is failed (Kafka Connect's `onlyFailed=true`).
    public func restart(_ name: String, onlyFailed: Bool = false) throws(ConnectorRuntimeError) -> Bool {
        let instance = try instance(name)
        if onlyFailed && instance.status().state != .failed { return false }
        var restarted = false
        instance.update { state in
            guard state.target == .running else { return }
            state.restartRequested = true
            state.consecutiveFailures = 0
            state.restarts += 1
            restarted = true
        }
        return restarted
    }

    /// `DELETE /connectors/{name}`: stops it, forgets it, and keeps or drops its offsets as
    /// told. A connector that has offsets is not deleted until the caller says which.
    public func delete(_ name: String, keepOffsets: Bool?) async throws(ConnectorRuntimeError) {
        let instance = try instance(name)
        let spec = instance.state.withLock { $0.spec }
        try Self.refuseFileConnector(spec, "delete it")
        if keepOffsets == nil {
            let count = (try? instance.family.offsets(spec).count) ?? 0
            if count > 0 {
                throw ConnectorRuntimeError(
                    .conflict, "offsets_decision_needed",
                    "connector '\(name)' has \(count) offsets; delete with offsets=keep (a connector made again with this name resumes from them) or offsets=drop")
            }
        }
        await forget(name, instance).value
        do { try store.remove(name) } catch {
            logger.error("cannot remove a deleted connector's file", metadata: ["edgelog.error": "\(error)"])
        }
        instance.family.removed(spec, keepOffsets: keepOffsets ?? true)
        logger.info("connector deleted", metadata: ["edgelog.connector": "\(name)", "edgelog.offsets_kept": "\(keepOffsets ?? true)"])
    }

    // MARK: Offsets (KIP-875: only while stopped)

    public func offsets(_ name: String) throws(ConnectorRuntimeError) -> [ConnectorOffset] {
        let instance = try instance(name)
        do { return try instance.family.offsets(instance.state.withLock { $0.spec }) } catch {
            throw Self.wrap(error, "offsets_unreadable")
        }
    }

    /// Sets offsets (`nil`: resets them all); only while the connector is stopped.
    public func alterOffsets(_ name: String, to offsets: [ConnectorOffset]?) throws(ConnectorRuntimeError) -> String {
        let instance = try instance(name)
        let (spec, target, phase) = instance.state.withLock { ($0.spec, $0.target, $0.phase) }
        guard target == .stopped && phase == .stopped else {
            throw ConnectorRuntimeError(
                .conflict, "connector_not_stopped",
                "connector '\(name)' is \(instance.status().state.rawValue); offsets change only while it is STOPPED (PUT /connectors/\(name)/stop)")
        }
        do { return try instance.family.alterOffsets(spec, to: offsets) } catch { throw Self.wrap(error, "offsets_not_changed") }
    }

    // MARK: Reload

    /// The configuration file changed (SIGHUP): its new connectors start, the ones it lost
    /// stop (their offsets stay), changed ones take their new configuration.
    public func reload(fileConnectors: [ConnectorSpec]) {
        let new = Dictionary(fileConnectors.map { ($0.name, $0) }, uniquingKeysWith: { $1 })
        let current = registry.withLock { $0.instances }
        for (name, instance) in current {
            let spec = instance.state.withLock { $0.spec }
            guard case .file = spec.origin else { continue }
            if let replacement = new[name], replacement.type == spec.type {
                if replacement != spec {
                    apply(replacement, to: instance)
                    logger.info("connector reconfigured by reload", metadata: ["edgelog.connector": "\(name)"])
                }
            } else {
                // Its family forgets it once it has stopped (an endpoint then answers 404).
                let stopped = forget(name, instance)
                Task {
                    await stopped.value
                    instance.family.removed(spec, keepOffsets: true)
                }
                logger.info("connector removed by reload (offsets kept)", metadata: ["edgelog.connector": "\(name)"])
            }
        }
        for spec in fileConnectors {
            guard let family = families[spec.type] else { continue }
            let added = registry.withLock { registry -> ConnectorInstance? in
                if let existing = registry.instances[spec.name] {
                    if case .file = existing.state.withLock({ $0.spec.origin }) { return nil }
                    logger.warning("the configuration file now names a connector made through the API; the API's is kept",
                        metadata: ["edgelog.connector": "\(spec.name)"])
                    return nil
                }
                let instance = makeInstance(spec, target: .running, family: family)
                registry.instances[spec.name] = instance
                return instance
            }
            if let added {
                family.adopted(spec)
                startSupervisor(added)
                logger.info("connector added by reload", metadata: ["edgelog.connector": "\(spec.name)"])
            }
        }
    }

    // MARK: Helpers

    /// Takes the connector out of the registry and tells its supervisor to stop; the returned
    /// task ends when its task has stopped.
    func forget(_ name: String, _ instance: ConnectorInstance) -> Task<Void, Never> {
        let supervisor = registry.withLock { registry -> Task<Void, Never>? in
            registry.instances[name] = nil
            return registry.supervisors.removeValue(forKey: name)
        }
        instance.update { $0.removed = true }
        return Task { await supervisor?.value }
    }

    /// The type (`connector.class` as Kafka Connect's tools send it, or `type`) and the rest.
    static func split(_ config: ConnectorConfig) throws(ConnectorRuntimeError) -> (ConnectorType, ConnectorConfig) {
        var rest = config
        let given = rest["connector.class"] ?? rest["type"]
        rest["connector.class"] = nil
        rest["type"] = nil
        rest["name"] = nil
        let known = ConnectorType.allCases.map(\.rawValue).joined(separator: ", ")
        guard case .string(let name)? = given else {
            throw ConnectorRuntimeError(.badRequest, "missing_type", "say the connector's type in \"connector.class\": one of \(known)")
        }
        guard let type = ConnectorType(rawValue: name) else {
            throw ConnectorRuntimeError(.badRequest, "unknown_type", "unknown connector type '\(name)'; known: \(known)")
        }
        return (type, rest)
    }

    func parse(name: String, type: ConnectorType, config: ConnectorConfig) throws(ConnectorRuntimeError) -> ConnectorSpec {
        do {
            return try ConnectorType.parse(name: name, type: type, config: config, origin: .api, environment: environment)
        } catch {
            throw ConnectorRuntimeError(.badRequest, "invalid_config", error.description)
        }
    }

    static func refuseFileConnector(_ spec: ConnectorSpec, _ action: String) throws(ConnectorRuntimeError) {
        if case .file(let path, let line) = spec.origin {
            throw ConnectorRuntimeError(
                .conflict, "defined_in_file",
                "connector '\(spec.name)' is defined in \(path)\(line > 0 ? ":\(line)" : ""); to \(action), edit the file and reload")
        }
    }

    static func wrap(_ error: any Error, _ code: String) -> ConnectorRuntimeError {
        (error as? ConnectorRuntimeError) ?? ConnectorRuntimeError(.badRequest, code, "\(error)")
    }
}
