public import EdgeLogTOML
import EdgeLogStorage

/// The connector types this build knows, their configuration keys, and how a configuration
/// becomes settings. The keys are the TOML file's, so a `[[connectors]]` table, an
/// `[[mqtt.brokers]]` entry and a JSON body through the API all read the same way.
public enum ConnectorType: String, Sendable, Equatable, CaseIterable {
    /// A connection to an MQTT broker with its routes (topic filters to log topics).
    case mqttSource = "mqtt-source"
    /// An HTTP ingest endpoint.
    case httpSource = "http-source"
    /// Replication of the log to a Kafka-compatible upstream cluster.
    case upstreamSink = "upstream-sink"

    public enum Kind: String, Sendable { case source, sink }

    public var kind: Kind { self == .upstreamSink ? .sink : .source }

    /// What `GET /connector-plugins` says of a key.
    public struct Key: Sendable {
        public var name: String
        /// "string", "int", "boolean", "list", "password", "choice", "table-list".
        public var type: String
        public var defaultValue: String?
        public var required: Bool
        public var documentation: String
    }

    public var summary: String {
        switch self {
        case .mqttSource: "Subscribes to an MQTT broker (persistent session, QoS 1) and appends each message to the log topic its route names."
        case .httpSource: "Takes JSON or NDJSON records over HTTP at POST /v1/ingest/{name} into one log topic."
        case .upstreamSink: "Replicates the log to a Kafka-compatible cluster with an idempotent producer and per-partition checkpoints."
        }
    }

    /// Parses a configuration; `name` is the connector's. Errors name the key (and the line
    /// when the configuration came from a file). `file` says where it came from.
    public static func parse(
        name: String, type: ConnectorType, config: ConnectorConfig, origin: ConnectorSpec.Origin,
        environment: [String: String] = [:]
    ) throws(ConfigError) -> ConnectorSpec {
        let file: String
        let line: Int
        switch origin {
        case .file(let path, let at): (file, line) = (path, at)
        case .api: (file, line) = ("connector '\(name)'", 0)
        }
        if let problem = ConnectorSpec.validate(name: name) { throw ConfigError(file: file, line: line > 0 ? line : nil, key: "name", message: problem) }
        var table = config
        table["name"] = .string(name)
        let reader = TOMLTableReader(table: table.tomlTable(line: line), path: "", file: file, coercesStrings: origin == .api)
        return ConnectorSpec(
            name: name, type: type, config: config,
            settings: try type.read(reader, environment: environment), origin: origin)
    }

    /// Reads a connector's table (with its `name`; `type` already read).
    package func read(_ table: TOMLTableReader, environment: [String: String]) throws(ConfigError) -> ConnectorSpec.Settings {
        switch self {
        case .mqttSource:
            let routes = try table.tables("routes").map { (route) throws(ConfigError) in try EdgelogConfig.readRoute(route) }
            guard !routes.isEmpty else { throw table.error("routes", "an mqtt-source needs at least one route {filter, topic, key}") }
            return .mqtt(try EdgelogConfig.readBroker(table, environment: environment), routes: routes)
        case .upstreamSink:
            return .upstream(try EdgelogConfig.readUpstream(table, environment: environment))
        case .httpSource:
            table.skip("name")
            guard let topic = try table.string("topic") else { throw table.error("topic", "an http-source needs the log topic it writes to") }
            do throws(StorageError) { try EdgeLogStorage.Topic.validate(name: topic) } catch {
                throw table.error("topic", error.description)
            }
            var source = ConnectorSpec.HTTPSource(topic: topic)
            source.maxBodyBytes = try table.int("max_body_bytes", in: 1024...(1 << 30))
            try table.rejectUnknownKeys()
            return .http(source)
        }
    }

    public var keys: [Key] {
        switch self {
        case .mqttSource:
            [
                Key(name: "host", type: "string", defaultValue: "127.0.0.1", required: false, documentation: "Broker host."),
                Key(name: "port", type: "int", defaultValue: "1883", required: false, documentation: "Broker port (1-65535)."),
                Key(name: "client_id", type: "string", defaultValue: "edgelog", required: false, documentation: "Persistent session id; keep it stable and unique per broker."),
                Key(name: "username", type: "string", defaultValue: nil, required: false, documentation: "MQTT user name."),
                Key(name: "password", type: "password", defaultValue: nil, required: false, documentation: "MQTT password (never shown back)."),
                Key(name: "tls_ca_file", type: "string", defaultValue: nil, required: false, documentation: "CA file: connect with TLS."),
                Key(name: "tls_cert_file", type: "string", defaultValue: nil, required: false, documentation: "Client certificate (with tls_key_file)."),
                Key(name: "tls_key_file", type: "string", defaultValue: nil, required: false, documentation: "Client key (with tls_cert_file)."),
                Key(name: "keepalive_seconds", type: "int", defaultValue: "30", required: false, documentation: "MQTT keepalive (5-65535)."),
                Key(name: "ack", type: "choice", defaultValue: "durable", required: false, documentation: "durable: PUBACK after the commit; fast: PUBACK when queued."),
                Key(name: "connections", type: "int", defaultValue: "1", required: false, documentation: "Connections sharing the routes through $share subscriptions (1-64)."),
                Key(name: "shared_group", type: "string", defaultValue: "edgelog", required: false, documentation: "Shared-subscription group when connections > 1."),
                Key(name: "receive_maximum", type: "int", defaultValue: "1000", required: false, documentation: "MQTT v5 Receive Maximum: the largest group one commit acknowledges."),
                Key(name: "broker_stats", type: "boolean", defaultValue: "true", required: false, documentation: "Watch the broker's $SYS counters."),
                Key(name: "routes", type: "table-list", defaultValue: nil, required: true, documentation: "Routes: [{filter, topic, key}]; {name} in a filter captures a level for the key."),
            ]
        case .httpSource:
            [
                Key(name: "topic", type: "string", defaultValue: nil, required: true, documentation: "Log topic of POST /v1/ingest/{name}."),
                Key(name: "max_body_bytes", type: "int", defaultValue: "[http] max_body_bytes", required: false, documentation: "Largest request body (413 above it)."),
            ]
        case .upstreamSink:
            [
                Key(name: "bootstrap", type: "list", defaultValue: nil, required: true, documentation: "Upstream brokers, host:port."),
                Key(name: "topic_template", type: "string", defaultValue: "{topic}", required: false, documentation: "Upstream topic; {topic} local name, {site} the site."),
                Key(name: "site", type: "string", defaultValue: "", required: false, documentation: "Value of {site}."),
                Key(name: "topics", type: "list", defaultValue: "[] (all)", required: false, documentation: "Local topics to replicate."),
                Key(name: "required", type: "boolean", defaultValue: "true", required: false, documentation: "Retention keeps what this upstream has not acknowledged."),
                Key(name: "create_topics", type: "boolean", defaultValue: "true", required: false, documentation: "Create missing upstream topics."),
                Key(name: "partition_mapping", type: "choice", defaultValue: "same", required: false, documentation: "same or by-key."),
                Key(name: "client_id", type: "string", defaultValue: "edgelog", required: false, documentation: "Kafka client id."),
                Key(name: "tls", type: "boolean", defaultValue: "false", required: false, documentation: "Connect with TLS."),
                Key(name: "tls_ca_file", type: "string", defaultValue: nil, required: false, documentation: "CA file (implies tls)."),
                Key(name: "tls_cert_file", type: "string", defaultValue: nil, required: false, documentation: "Client certificate."),
                Key(name: "tls_key_file", type: "string", defaultValue: nil, required: false, documentation: "Client key."),
                Key(name: "tls_verify", type: "boolean", defaultValue: "true", required: false, documentation: "Verify the upstream's certificate."),
                Key(name: "sasl_mechanism", type: "choice", defaultValue: nil, required: false, documentation: "PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512."),
                Key(name: "sasl_username", type: "string", defaultValue: nil, required: false, documentation: "SASL user."),
                Key(name: "sasl_password", type: "password", defaultValue: nil, required: false, documentation: "SASL password (never shown back)."),
                Key(name: "max_bytes_per_second", type: "int", defaultValue: "0 (unlimited)", required: false, documentation: "Upload ceiling."),
                Key(name: "max_in_flight", type: "int", defaultValue: "5", required: false, documentation: "Produce requests in flight per partition (1-5)."),
                Key(name: "max_request_bytes", type: "int", defaultValue: "1048576", required: false, documentation: "Stored bytes per request."),
                Key(name: "in_sync_max_lag_records", type: "int", defaultValue: "10000", required: false, documentation: "In sync within this lag."),
                Key(name: "in_sync_max_lag_seconds", type: "int", defaultValue: "30", required: false, documentation: "In sync within this lag."),
                Key(name: "checkpoint_interval_ms", type: "int", defaultValue: "1000", required: false, documentation: "How often checkpoints are persisted."),
                Key(name: "request_timeout_ms", type: "int", defaultValue: "30000", required: false, documentation: "Kafka request timeout."),
                Key(name: "retry_backoff_ms", type: "int", defaultValue: "100", required: false, documentation: "First retry delay."),
                Key(name: "retry_backoff_max_ms", type: "int", defaultValue: "10000", required: false, documentation: "Longest retry delay."),
            ]
        }
    }
}
