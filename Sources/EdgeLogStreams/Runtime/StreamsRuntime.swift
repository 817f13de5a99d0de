public import EdgeLogCore
public import EdgeLogStorage
import Foundation
public import Logging
public import ServiceLifecycle
import Synchronization

/// Every processor of the daemon: those of the configuration file (`[[processors]]`) and those
/// made through the API (their query kept in `<data>/.streams/<name>/definition.json`), each
/// run by its `ProcessorRunner` in its own task. A processor that fails never stops the
/// daemon or the others; it is retried from its last commit.
public final class StreamsRuntime: Service, Sendable {
    public enum Origin: String, Sendable { case file, api }

    struct Entry {
        var runner: ProcessorRunner
        var origin: Origin
        var task: Task<Void, Never>?
    }

    struct Registry {
        var entries: [String: Entry] = [:]
        var running = false
    }

    let manager: LogManager
    let logger: Logger
    let tuning: ProcessorRunner.Tuning
    let registry = Mutex(Registry())
    var root: String { manager.configuration.dataDirectory + "/.streams" }

    /// Plans the file's processors (a query that does not plan is logged and skipped: `config
    /// check` reports it before a restart) and the stored ones.
    public init(manager: LogManager, fileProcessors: [EdgelogConfig.Processor], tuning: ProcessorRunner.Tuning = .init(), logger: Logger) {
        self.manager = manager
        self.tuning = tuning
        var logger = logger
        logger[metadataKey: "edgelog.part"] = "streams"
        self.logger = logger
        var entries: [String: Entry] = [:]
        for processor in fileProcessors {
            do {
                let plan = try Self.plan(processor.query, expectedName: processor.name)
                entries[plan.name] = Entry(runner: makeRunner(plan), origin: .file)
            } catch {
                logger.error("a processor of the configuration file does not plan; not started", metadata: ["edgelog.error": "\(error)"])
            }
        }
        for (name, query) in storedDefinitions() {
            guard entries[name] == nil else {
                logger.warning("a processor made through the API has the name of one in the configuration file; the file's is used", metadata: ["edgelog.processor": "\(name)"])
                continue
            }
            do {
                entries[name] = Entry(runner: makeRunner(try Self.plan(query, expectedName: name)), origin: .api)
            } catch {
                logger.error("a stored processor no longer plans; not started", metadata: ["edgelog.processor": "\(name)", "edgelog.error": "\(error)"])
            }
        }
        registry.withLock { $0.entries = entries }
    }

    func makeRunner(_ plan: ProcessorPlan) -> ProcessorRunner {
        ProcessorRunner(plan: plan, manager: manager, tuning: tuning, logger: logger)
    }

    /// The plan of a query, with a name fit for file and topic names.
    public static func plan(_ query: String, expectedName: String? = nil) throws -> ProcessorPlan {
        let plan = try ProcessorPlan.make(query)
        if let expectedName, expectedName != plan.name {
            throw StreamsRuntimeError(.badRequest, "name_mismatch", "the processor is named '\(expectedName)' but its query creates '\(plan.name)'")
        }
        // The name is a directory under <data>/.streams and part of a topic name: letters,
        // digits, '_' and '-' only (a quoted name could otherwise say '..').
        let allowed = plan.name.unicodeScalars.allSatisfy { ($0.isASCII && ($0.properties.isAlphabetic || ("0"..."9").contains($0))) || $0 == "_" || $0 == "-" }
        guard !plan.name.isEmpty, plan.name.utf8.count <= 200, allowed else {
            throw StreamsRuntimeError(.badRequest, "invalid_name", "'\(plan.name)' cannot name a processor: use letters, digits, '_' and '-'")
        }
        guard !plan.inputs.contains(where: plan.outputTopics.contains) else {
            throw StreamsRuntimeError(.badRequest, "output_is_input", "a processor cannot write to a topic it reads")
        }
        return plan
    }

    public func run() async throws {
        let runners = registry.withLock { registry in
            registry.running = true
            return registry.entries.keys.sorted()
        }
        for name in runners { start(name) }
        logger.info("processors started", metadata: ["edgelog.processors": "\(runners.count)"])
        try? await gracefulShutdown()
        let tasks = registry.withLock { registry in
            registry.running = false
            return registry.entries.values.compactMap(\.task)
        }
        for task in tasks { task.cancel() }
        for task in tasks { await task.value }
        logger.info("processors stopped")
    }

    func start(_ name: String) {
        registry.withLock { registry in
            guard registry.running, var entry = registry.entries[name], entry.task == nil else { return }
            let runner = entry.runner
            entry.task = Task { await runner.run() }
            registry.entries[name] = entry
        }
    }

    // MARK: Operations

    public var names: [String] { registry.withLock { $0.entries.keys.sorted() } }

    public func statuses() -> [(status: ProcessorStatus, origin: Origin)] {
        registry.withLock { registry in registry.entries.keys.sorted().map { (registry.entries[$0]!.runner.status, registry.entries[$0]!.origin) } }
    }

    public func status(_ name: String) throws(StreamsRuntimeError) -> (status: ProcessorStatus, origin: Origin) {
        guard let entry = registry.withLock({ $0.entries[name] }) else { throw .processorNotFound(name) }
        return (entry.runner.status, entry.origin)
    }

    /// Plans, saves and starts a processor made through the API.
    @discardableResult
    public func create(query: String) throws -> ProcessorStatus {
        let plan = try Self.plan(query)
        let runner = makeRunner(plan)
        try registry.withLock { registry throws(StreamsRuntimeError) in
            guard registry.entries[plan.name] == nil else {
                throw StreamsRuntimeError(.conflict, "processor_exists", "a processor named '\(plan.name)' exists")
            }
            registry.entries[plan.name] = Entry(runner: runner, origin: .api)
        }
        do {
            try saveDefinition(name: plan.name, query: query)
        } catch {
            _ = registry.withLock { $0.entries.removeValue(forKey: plan.name) }
            throw StreamsRuntimeError(.unavailable, "storage_error", "cannot save the processor: \(error)")
        }
        start(plan.name)
        logger.info("processor created", metadata: ["edgelog.processor": "\(plan.name)"])
        return runner.status
    }

    /// Stops a processor made through the API and forgets it: its definition, snapshots and
    /// commit topic. Its output topics stay, with what it wrote.
    public func drop(_ name: String) async throws {
        let entry = try registry.withLock { registry throws(StreamsRuntimeError) -> Entry in
            guard let entry = registry.entries[name] else { throw .processorNotFound(name) }
            guard entry.origin == .api else {
                throw StreamsRuntimeError(.conflict, "defined_in_file", "processor '\(name)' is defined in the configuration file; remove it there")
            }
            registry.entries[name] = nil
            return entry
        }
        entry.task?.cancel()
        await entry.task?.value
        let commitTopic = ProcessorRunner.commitTopic(for: name)
        if manager.topic(commitTopic) != nil { try manager.deleteTopic(commitTopic) }
        try? FileManager.default.removeItem(atPath: root + "/\(name)")
        logger.info("processor dropped", metadata: ["edgelog.processor": "\(name)"])
    }

    // MARK: Definitions

    struct Definition: Codable {
        var name: String
        var query: String
    }

    func saveDefinition(name: String, query: String) throws {
        try FileSystem.createDirectory(root)
        try FileSystem.createDirectory(root + "/\(name)")
        let data = try JSONEncoder().encode(Definition(name: name, query: query))
        try FileSystem.writeAtomically(.init(bytes: data), to: root + "/\(name)/definition.json")
    }

    func storedDefinitions() -> [(String, String)] {
        guard let names = try? FileSystem.list(root) else { return [] }
        var definitions: [(String, String)] = []
        for name in names.sorted() {
            let path = root + "/\(name)/definition.json"
            guard FileSystem.exists(path) else { continue }
            do {
                let definition = try JSONDecoder().decode(Definition.self, from: Data(contentsOf: URL(fileURLWithPath: path)))
                definitions.append((definition.name, definition.query))
            } catch {
                logger.error("cannot read a stored processor; skipped", metadata: ["edgelog.path": "\(path)", "edgelog.error": "\(error)"])
            }
        }
        return definitions
    }
}

/// A refused processor operation, with the HTTP status the API answers and a stable code.
public typealias StreamsRuntimeError = RuntimeRefusal

extension RuntimeRefusal {
    static func processorNotFound(_ name: String) -> Self { .init(.notFound, "processor_not_found", "no processor named '\(name)'") }
}
