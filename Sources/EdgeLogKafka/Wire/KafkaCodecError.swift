/// Why bytes could not be read as, or a value could not be written as, a Kafka message.
/// Every case names the field, so a broken peer is reported precisely.
public enum KafkaCodecError: Error, Equatable, Sendable, CustomStringConvertible {
    /// The buffer ended inside `field`.
    case truncated(field: String)
    /// A null arrived (or was to be written) where the version does not allow one.
    case unexpectedNull(field: String)
    /// A length or count is negative, or larger than what is left of the frame.
    case invalidLength(field: String, length: Int)
    /// An unsigned varint ran past five bytes.
    case malformedVarint
    /// A string field holds bytes that are not UTF-8.
    case invalidUTF8(field: String)
    /// An API key or version this codec does not speak.
    case unsupportedVersion(apiKey: Int16, version: Int16)

    public var description: String {
        switch self {
        case .truncated(let field): "truncated message: the frame ended inside '\(field)'"
        case .unexpectedNull(let field): "'\(field)' is null, which this version does not allow"
        case .invalidLength(let field, let length): "'\(field)' has an impossible length \(length)"
        case .malformedVarint: "malformed unsigned varint (more than 5 bytes)"
        case .invalidUTF8(let field): "'\(field)' is not valid UTF-8"
        case .unsupportedVersion(let key, let version): "api key \(key) version \(version) is not supported"
        }
    }
}
