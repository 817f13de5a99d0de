public import EdgeLogCore

/// A refused connector operation, with the HTTP status the API answers and a stable code.
public typealias ConnectorRuntimeError = RuntimeRefusal

extension RuntimeRefusal {
    static func connectorNotFound(_ name: String) -> Self { .init(.notFound, "connector_not_found", "no connector named '\(name)'") }
}
