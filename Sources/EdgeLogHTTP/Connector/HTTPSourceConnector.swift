public import EdgeLogConnect
public import EdgeLogCore
import EdgeLogStorage
import Synchronization

/// The HTTP ingest endpoints that are open now: an `http-source` connector's task opens its
/// endpoint while it runs, so a paused or stopped one answers 503 (and the client retries)
/// instead of taking data. The `[http]` endpoint is the connector named "http".
package final class HTTPIngestEndpoints: Sendable {
    final class Endpoint: Sendable {
        let source: ConnectorSpec.HTTPSource
        let records = Atomic<Int64>(0)
        let bytes = Atomic<Int64>(0)
        let refused = Atomic<Int64>(0)
        let lastSuccessMs = Atomic<Int64>(0)
        let open = Atomic<Bool>(true)

        init(source: ConnectorSpec.HTTPSource) { self.source = source }
    }

    private let endpoints = Mutex<[String: Endpoint]>([:])
    /// Names of the `http-source` connectors, open or not (a closed one answers 503, an
    /// unknown one 404).
    private let known = Mutex<Set<String>>([])

    package init() {}

    func open(_ name: String, _ endpoint: Endpoint) {
        endpoints.withLock { $0[name] = endpoint }
        _ = known.withLock { $0.insert(name) }
    }

    func close(_ name: String, _ endpoint: Endpoint) {
        endpoint.open.store(false, ordering: .relaxed)
        endpoints.withLock { if $0[name] === endpoint { $0[name] = nil } }
    }

    func forget(_ name: String) { _ = known.withLock { $0.remove(name) } }

    /// The open endpoint of that name; throws 503 when it is paused or stopped, 404 when
    /// there is none.
    func endpoint(_ name: String) throws(APIError) -> Endpoint {
        if let endpoint = endpoints.withLock({ $0[name] }) { return endpoint }
        guard known.withLock({ $0.contains(name) }) else {
            throw APIError(.notFound, "unknown_endpoint", "no HTTP ingest endpoint named '\(name)'")
        }
        var error = APIError(
            .serviceUnavailable, "connector_not_running",
            "the http-source connector '\(name)' is not running (paused, stopped or restarting); retry later")
        error.retryAfterSeconds = 5
        throw error
    }
}

/// The `http-source` connector type.
package struct HTTPSourceFamily: ConnectorFamily {
    let endpoints: HTTPIngestEndpoints

    package init(endpoints: HTTPIngestEndpoints) { self.endpoints = endpoints }

    package var type: ConnectorType { .httpSource }

    package func makeTask(_ spec: ConnectorSpec) throws -> any ConnectorTask {
        guard case .http(let source) = spec.settings else { preconditionFailure("not an http-source: \(spec.type)") }
        return HTTPSourceTask(name: spec.name, endpoint: .init(source: source), endpoints: endpoints)
    }

    package func removed(_ spec: ConnectorSpec, keepOffsets: Bool) { endpoints.forget(spec.name) }
}

/// A running `http-source`: its endpoint is open until the task is cancelled.
struct HTTPSourceTask: ConnectorTask {
    let name: String
    let endpoint: HTTPIngestEndpoints.Endpoint
    let endpoints: HTTPIngestEndpoints

    func run() async throws {
        endpoints.open(name, endpoint)
        defer { endpoints.close(name, endpoint) }
        while !Task.isCancelled { try? await Task.sleep(for: .seconds(3600)) }
    }

    func health() -> ConnectorHealth {
        let last = endpoint.lastSuccessMs.load(ordering: .relaxed)
        return ConnectorHealth(lastSuccessMs: last > 0 ? last : nil)
    }

    func counters() -> ConnectorCounters {
        var counters = ConnectorCounters()
        counters.recordsIn = endpoint.records.load(ordering: .relaxed)
        counters.bytesIn = endpoint.bytes.load(ordering: .relaxed)
        let refused = endpoint.refused.load(ordering: .relaxed)
        if refused > 0 { counters.errors["refused"] = refused }
        return counters
    }
}
