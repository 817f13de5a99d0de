public import EdgeLogKafka
public import EdgeLogStorage

/// The daemon's whole configuration. Every field has a default, so an empty file (or none, for
/// `scripts/run`) gives a working daemon; `config/edgelog.toml` documents each key.
public struct EdgelogConfig: Sendable, Equatable {
    public struct Server: Sendable, Equatable {
        public var dataDirectory = "/var/lib/edgelog"
        /// Longest graceful drain before the daemon gives up and exits (keep it below the unit's
        /// TimeoutStopSec).
        public var shutdownTimeoutSeconds = 30
    }

    public struct HTTP: Sendable, Equatable {
        public var enabled = true
        public var host = "127.0.0.1"
        public var port = 8080
        public var maxBodyBytes = 4 * 1024 * 1024
        /// Bearer token required on every endpoint but /healthz and /readyz; nil: no auth.
        public var authToken: String? = nil
        public var autoCreateTopics = true
        public var defaultPartitions: Int32 = 3
    }

    /// The Kafka wire-protocol listener: any Kafka client can produce to and consume from the
    /// log, and other edgelogs can replicate into this one (hub mode).
    public struct Kafka: Sendable, Equatable {
        public var enabled = true
        public var host = "127.0.0.1"
        public var port = 9092
        /// The host clients are told to connect to (Metadata); the listen host when unset.
        public var advertisedHost: String? = nil
        public var advertisedPort: Int? = nil
        /// Largest request frame accepted; a bigger one closes the connection.
        public var maxRequestBytes = 100 * 1024 * 1024
        /// Incremental fetch sessions kept at once (KIP-227; Kafka's
        /// max.incremental.fetch.session.cache.slots); 0 answers every fetch in full.
        public var fetchSessionSlots = 1000
        public var autoCreateTopics = true
        /// Fetch answers send record sets straight from the segment files (sendfile) on
        /// plain TCP; off, they are read into memory first, as on TLS.
        public var zeroCopy = true
        /// TLS for the listener when both are set.
        public var tlsCertFile: String? = nil
        public var tlsKeyFile: String? = nil
        /// SASL users (name to password); when any is set, clients must authenticate.
        public var users: [String: String] = [:]
        public var saslMechanisms: [KafkaSASLCredentials.Mechanism] = [.scramSHA512, .scramSHA256, .plain]
    }

    public struct Storage: Sendable, Equatable {
        /// Settings of topics that do not override them.
        public var log = LogConfig()
        public var diskBudgetBytes: Int64? = nil
        public var overflow: OverflowPolicy = .reject
        /// How often retention deletes old segments (Kafka's log.retention.check.interval.ms).
        public var retentionCheckIntervalMs: Int64 = 60_000
    }

    /// How every processor runs (`[streams]`).
    public struct Streams: Sendable, Equatable {
        /// Records read from one input partition per cycle: larger for throughput, smaller
        /// for shorter commits.
        public var cycleRecords = 4096
        /// A snapshot once this long has passed with input processed since the last one…
        public var snapshotIntervalMs: Int64 = 10_000
        /// …or once this many records were processed: what a restart replays at most.
        public var snapshotRecords: Int64 = 200_000
    }

    /// A stream processor of the file: its query, and the name it must have (when given, it
    /// is checked against the query's CREATE STREAM name).
    public struct Processor: Sendable, Equatable {
        public var name: String?
        public var query: String

        public init(name: String?, query: String) {
            self.name = name
            self.query = query
        }
    }

    public struct Topic: Sendable, Equatable {
        public var name: String
        public var partitions: Int32
        public var log: LogConfig
    }

    /// When an MQTT message is acknowledged to the broker.
    public enum AckMode: String, Sendable, Equatable {
        /// PUBACK only after the record is committed to the log: at-least-once across kill -9.
        case durable
        /// PUBACK as soon as the message is queued for the log: faster, but a crash loses what
        /// was queued and not yet committed (at most one group, bounded by linger and size).
        case fast
    }

    public struct Broker: Sendable, Equatable {
        public var name: String
        public var host = "127.0.0.1"
        public var port = 1883
        public var clientId = "edgelog"
        public var username: String? = nil
        public var password: String? = nil
        public var tlsCAFile: String? = nil
        public var tlsCertFile: String? = nil
        public var tlsKeyFile: String? = nil
        public var keepaliveSeconds = 30
        public var ack: AckMode = .durable
        public var connections = 1
        public var sharedGroup = "edgelog"
        /// MQTT v5 Receive Maximum: how many QoS 1 messages the broker may send before it
        /// must wait for PUBACKs, so the largest group one commit acknowledges.
        public var receiveMaximum = 1_000
        /// Subscribe to the broker's `$SYS` counters (dropped messages, stored messages,
        /// connected clients).
        public var brokerStats = true

        public init(name: String) { self.name = name }
    }

    public struct Route: Sendable, Equatable {
        public var filter: TopicFilter
        public var topic: String
        public var key: KeyTemplate?

        public init(filter: TopicFilter, topic: String, key: KeyTemplate? = nil) {
            self.filter = filter
            self.topic = topic
            self.key = key
        }
    }

    /// How local partitions map to the upstream topic's.
    public enum PartitionMapping: String, Sendable, Equatable {
        /// Local partition p to upstream partition p, batches as stored; an upstream with
        /// fewer partitions is refused.
        case same
        /// Records placed by murmur2 of their key over the upstream's partitions, re-batched
        /// (and so recompressed) when the partition counts differ.
        case byKey = "by-key"
    }

    /// One upstream cluster the log is replicated to (the edge is the leader, the upstream a
    /// follower). See `config/edgelog.toml` for each key.
    public struct Upstream: Sendable, Equatable {
        public var name: String
        public var bootstrap: [KafkaBrokerAddress] = []
        /// Upstream topic name; `{topic}` is the local topic, `{site}` the `site` value.
        public var topicTemplate = "{topic}"
        public var site = ""
        /// Local topics to replicate; empty means every topic.
        public var topics: [String] = []
        /// Whether retention must keep what this upstream has not acknowledged.
        public var required = true
        public var createTopics = true
        public var partitionMapping = PartitionMapping.same
        public var clientId = "edgelog"
        public var tls = false
        public var tlsCAFile: String? = nil
        public var tlsCertFile: String? = nil
        public var tlsKeyFile: String? = nil
        public var tlsVerify = true
        public var sasl: KafkaSASLCredentials? = nil
        /// Upload byte rate ceiling for metered uplinks; nil is unlimited.
        public var maxBytesPerSecond: Int? = nil
        /// Produce requests in flight per partition (Kafka's idempotence allows at most 5).
        public var maxInFlight = 5
        /// Stored bytes read per request; a batch larger than this still goes alone.
        public var maxRequestBytes = 1024 * 1024
        public var inSyncMaxLagRecords: Int64 = 10_000
        public var inSyncMaxLagSeconds = 30
        public var checkpointIntervalMs = 1000
        public var requestTimeoutMs = 30_000
        public var retryBackoffMs = 100
        public var retryBackoffMaxMs = 10_000

        public init(name: String) { self.name = name }

        /// The upstream topic a local topic goes to.
        public func upstreamTopic(for topic: String) -> String {
            topicTemplate.replacingOccurrences(of: "{topic}", with: topic).replacingOccurrences(of: "{site}", with: site)
        }

        /// The listed topics, or every topic but the processors' commit topics (their
        /// bookkeeping, of no use upstream).
        public func replicates(_ topic: String) -> Bool {
            topics.isEmpty ? !topic.hasPrefix(Self.processorCommitTopicPrefix) : topics.contains(topic)
        }

        public static let processorCommitTopicPrefix = "_edgelog.streams."
    }

    public var server = Server()
    public var http = HTTP()
    public var kafka = Kafka()
    public var storage = Storage()
    public var topics: [Topic] = []
    public var brokers: [Broker] = []
    public var routes: [Route] = []
    public var upstreams: [Upstream] = []
    public var processors: [Processor] = []
    public var streams = Streams()
    /// Every connector the file defines: the HTTP endpoint, the brokers, the upstreams and
    /// the `[[connectors]]` tables (see `EdgelogConfig+Connectors.swift`).
    public var connectors: [ConnectorSpec] = []

    public init() {}
}
