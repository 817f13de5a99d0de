public import NIOSSL

/// How the client reaches and authenticates to a cluster.
public struct KafkaClientConfiguration: Sendable {
    public var clientId: String = "edgelog"
    public var connectTimeout: Duration = .seconds(10)
    public var requestTimeout: Duration = .seconds(30)
    /// TLS toward every broker when set (the certificate is checked against the host name
    /// the broker is reached by, unless the configuration turns verification off).
    public var tls: TLSConfiguration?
    public var sasl: KafkaSASLCredentials?
    /// Largest response frame accepted; a broker sending more is cut off.
    public var maxResponseBytes: Int = 64 * 1024 * 1024

    public init() {}
}

/// SASL credentials for managed clusters (KIP-43 framing through SaslAuthenticate).
public struct KafkaSASLCredentials: Sendable, Equatable {
    public enum Mechanism: String, Sendable, CaseIterable {
        case plain = "PLAIN"
        case scramSHA256 = "SCRAM-SHA-256"
        case scramSHA512 = "SCRAM-SHA-512"
    }

    public var mechanism: Mechanism
    public var username: String
    public var password: String

    public init(mechanism: Mechanism, username: String, password: String) {
        self.mechanism = mechanism
        self.username = username
        self.password = password
    }
}

/// A broker's address, "host:port".
public struct KafkaBrokerAddress: Hashable, Sendable, CustomStringConvertible {
    public var host: String
    public var port: Int

    public init(host: String, port: Int) {
        self.host = host
        self.port = port
    }

    /// Parses "host:port" (and "[v6]:port"); nil when it is not one.
    public init?(_ text: String) {
        guard let colon = text.lastIndex(of: ":"), let port = Int(text[text.index(after: colon)...]),
            (1...65535).contains(port)
        else { return nil }
        var host = String(text[..<colon])
        if host.hasPrefix("[") && host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        guard !host.isEmpty else { return nil }
        self.init(host: host, port: port)
    }

    public var description: String { host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)" }
}
