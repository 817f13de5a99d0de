/// A refused connector operation, with the HTTP status the API answers and a stable code.
public struct ConnectorRuntimeError: Error, Sendable, CustomStringConvertible {
    public enum Status: Int, Sendable {
        case badRequest = 400
        case notFound = 404
        case conflict = 409
        case unavailable = 503
    }

    public var status: Status
    public var code: String
    public var message: String

    public init(_ status: Status, _ code: String, _ message: String) {
        self.status = status
        self.code = code
        self.message = message
    }

    public var description: String { message }

    static func notFound(_ name: String) -> Self { .init(.notFound, "connector_not_found", "no connector named '\(name)'") }
}
