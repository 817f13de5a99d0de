/// One connector instance: a name, a type, the configuration as given and the settings read
/// from it, and where it was defined.
public struct ConnectorSpec: Sendable, Equatable {
    public enum Origin: Sendable, Equatable {
        /// The configuration file (changed by editing it and reloading).
        case file(path: String, line: Int)
        /// Created through the API, persisted in the data directory.
        case api
    }

    public enum Settings: Sendable, Equatable {
        case mqtt(EdgelogConfig.Broker, routes: [EdgelogConfig.Route])
        case http(HTTPSource)
        case upstream(EdgelogConfig.Upstream)
    }

    /// An HTTP ingest endpoint. The one from `[http]` (named "http") takes
    /// `POST /v1/topics/{topic}/records`; others take `POST /v1/ingest/{name}` into `topic`.
    public struct HTTPSource: Sendable, Equatable {
        /// The log topic of `/v1/ingest/{name}`; nil for the `[http]` endpoint.
        public var topic: String?
        /// Topics the endpoint may write to; empty: any.
        public var topics: [String] = []
        public var maxBodyBytes: Int?

        public init(topic: String? = nil) { self.topic = topic }
    }

    public var name: String
    public var type: ConnectorType
    public var config: ConnectorConfig
    public var settings: Settings
    public var origin: Origin

    public init(name: String, type: ConnectorType, config: ConnectorConfig, settings: Settings, origin: Origin) {
        self.name = name
        self.type = type
        self.config = config
        self.settings = settings
        self.origin = origin
    }

    /// Connector names are part of file names and URLs.
    public static func validate(name: String) -> String? {
        guard !name.isEmpty, name.utf8.count <= 100, !name.hasPrefix("."),
            name.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-" || $0 == "_" || $0 == ".") })
        else { return "'\(name)' is not a connector name: 1 to 100 ASCII letters, digits, '-', '_' or '.', not starting with '.'" }
        return nil
    }
}
