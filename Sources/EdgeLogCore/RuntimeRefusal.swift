/// A refused operation of a runtime the API drives (connectors, processors): the HTTP status
/// the API answers, a stable code for scripts, and the message for people.
public struct RuntimeRefusal: Error, Sendable, CustomStringConvertible {
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
}
