import EdgeLogKafka
import EdgeLogStorage
import Foundation
import EdgeLogTOML

extension EdgelogConfig {
    /// Reads and validates a configuration file. Secrets may come from the environment:
    /// `EDGELOG_HTTP_TOKEN`, `EDGELOG_MQTT_PASSWORD_<BROKER NAME>` (upper case, other
    /// characters as '_'); `EDGELOG_DATA_DIR` overrides `server.data_dir` and
    /// `EDGELOG_KAFKA_LISTEN` the Kafka listener's `listen`.
    public static func load(file path: String) throws(ConfigError) -> EdgelogConfig {
        try load(file: path, environment: ProcessInfo.processInfo.environment)
    }

    public static func load(file path: String, environment: [String: String]) throws(ConfigError) -> EdgelogConfig {
        // Bytes, not a String: bytes that are not UTF-8 (a save cut inside a character) get
        // the parser's error with their line and column, not Foundation's "wrong format".
        let bytes: Data
        do { bytes = try Data(contentsOf: URL(fileURLWithPath: path)) } catch {
            throw ConfigError(file: path, message: "cannot read the file: \(error.localizedDescription)")
        }
        return try parse(bytes: bytes, file: path, environment: environment)
    }

    public static func parse(_ text: String, file: String, environment: [String: String] = [:]) throws(ConfigError)
        -> EdgelogConfig
    {
        try parse(bytes: Array(text.utf8), file: file, environment: environment)
    }

    public static func parse(
        bytes: some Collection<UInt8>, file: String, environment: [String: String] = [:]
    ) throws(ConfigError) -> EdgelogConfig {
        let root: TOMLTable
        do { root = try TOMLParser.parse(bytes: bytes) } catch {
            throw ConfigError(file: file, line: error.line, message: "\(error.message) (column \(error.column))")
        }
        let reader = TOMLTableReader(table: root, path: "", file: file)
        var config = EdgelogConfig()

        if let server = try reader.table("server") {
            config.server.dataDirectory = try server.string("data_dir") ?? config.server.dataDirectory
            config.server.shutdownTimeoutSeconds =
                try server.int("shutdown_timeout_seconds", in: 1...3600) ?? config.server.shutdownTimeoutSeconds
            if config.server.dataDirectory.isEmpty { throw server.error("data_dir", "must not be empty") }
            try server.rejectUnknownKeys()
        }

        if let http = try reader.table("http") {
            config.http.enabled = try http.bool("enabled") ?? true
            if let listen = try http.string("listen") {
                guard let colon = listen.lastIndex(of: ":"), let port = Int(listen[listen.index(after: colon)...]),
                    (1...65535).contains(port), colon > listen.startIndex
                else { throw http.error("listen", "expected host:port such as 127.0.0.1:8080, found \"\(listen)\"") }
                var host = String(listen[..<colon])
                if host.hasPrefix("[") && host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
                config.http.host = host
                config.http.port = port
            }
            config.http.maxBodyBytes = try http.int("max_body_bytes", in: 1024...(1 << 30)) ?? config.http.maxBodyBytes
            config.http.authToken = try http.optionalString("auth_token")
            config.http.autoCreateTopics = try http.bool("auto_create_topics") ?? true
            config.http.defaultPartitions = Int32(try http.int("default_partitions", in: 1...10_000) ?? 3)
            try http.rejectUnknownKeys()
        }

        if let kafka = try reader.table("kafka") {
            config.kafka.enabled = try kafka.bool("enabled") ?? true
            if let listen = try kafka.string("listen") {
                guard let address = KafkaBrokerAddress(listen) else {
                    throw kafka.error("listen", "expected host:port such as 127.0.0.1:9092, found \"\(listen)\"")
                }
                config.kafka.host = address.host
                config.kafka.port = address.port
            }
            if let advertised = try kafka.optionalString("advertised_listener") {
                guard let address = KafkaBrokerAddress(advertised) else {
                    throw kafka.error("advertised_listener", "expected host:port, found \"\(advertised)\"")
                }
                config.kafka.advertisedHost = address.host
                config.kafka.advertisedPort = address.port
            }
            config.kafka.maxRequestBytes = try kafka.int("max_request_bytes", in: 1024...(1 << 30)) ?? config.kafka.maxRequestBytes
            config.kafka.fetchSessionSlots = try kafka.int("fetch_session_slots", in: 0...100_000) ?? config.kafka.fetchSessionSlots
            config.kafka.autoCreateTopics = try kafka.bool("auto_create_topics") ?? true
            config.kafka.zeroCopy = try kafka.bool("zero_copy") ?? true
            for (key, keyPath) in [("tls_cert_file", \Kafka.tlsCertFile), ("tls_key_file", \.tlsKeyFile)] {
                if let path = try kafka.optionalString(key) {
                    guard FileManager.default.isReadableFile(atPath: path) else { throw kafka.error(key, "cannot read \(path)") }
                    config.kafka[keyPath: keyPath] = path
                }
            }
            if (config.kafka.tlsCertFile == nil) != (config.kafka.tlsKeyFile == nil) {
                throw kafka.error("tls_cert_file", "tls_cert_file and tls_key_file go together")
            }
            if let mechanisms = try kafka.strings("sasl_mechanisms") {
                config.kafka.saslMechanisms = []
                for name in mechanisms {
                    guard let mechanism = KafkaSASLCredentials.Mechanism(rawValue: name) else {
                        throw kafka.error("sasl_mechanisms", "'\(name)' is not one of PLAIN, SCRAM-SHA-256, SCRAM-SHA-512")
                    }
                    config.kafka.saslMechanisms.append(mechanism)
                }
            }
            for user in try kafka.tables("users") {
                guard let name = try user.optionalString("name") else { throw user.error("name", "a user needs a name") }
                let variable = "EDGELOG_KAFKA_PASSWORD_" + String(name.uppercased().map { $0.isLetter || $0.isNumber ? $0 : "_" })
                let filePassword = try user.optionalString("password")
                guard let password = environment[variable].flatMap({ $0.isEmpty ? nil : $0 }) ?? filePassword else {
                    throw user.error("password", "set password or \(variable)")
                }
                guard config.kafka.users.updateValue(password, forKey: name) == nil else {
                    throw user.error("name", "user '\(name)' is listed twice")
                }
                try user.rejectUnknownKeys()
            }
            try kafka.rejectUnknownKeys()
        }

        if let storage = try reader.table("storage") {
            config.storage.log = try readLogConfig(storage, base: LogConfig())
            if let budget = try storage.int("disk_budget_bytes", in: 0...Int.max), budget > 0 {
                config.storage.diskBudgetBytes = Int64(budget)
            }
            config.storage.overflow = try storage.choice("overflow", OverflowPolicy.self) ?? .reject
            if let interval = try storage.int("retention_check_interval_ms", in: 100...86_400_000) {
                config.storage.retentionCheckIntervalMs = Int64(interval)
            }
            try storage.rejectUnknownKeys()
        }

        var topicNames: Set<String> = []
        for topic in try reader.tables("topics") {
            guard let name = try topic.string("name") else { throw topic.error(nil, "a topic needs a name") }
            do throws(StorageError) { try EdgeLogStorage.Topic.validate(name: name) } catch {
                throw topic.error("name", error.description)
            }
            guard topicNames.insert(name).inserted else { throw topic.error("name", "topic '\(name)' is listed twice") }
            let partitions = Int32(try topic.int("partitions", in: 1...10_000) ?? Int(config.http.defaultPartitions))
            let log = try readLogConfig(topic, base: config.storage.log)
            try topic.rejectUnknownKeys()
            config.topics.append(.init(name: name, partitions: partitions, log: log))
        }

        var brokerTables: [TOMLTableReader] = []
        var routeTables: [TOMLTableReader] = []
        if let mqtt = try reader.table("mqtt") {
            var brokerNames: Set<String> = []
            for table in try mqtt.tables("brokers") {
                let broker = try readBroker(table, environment: environment)
                guard brokerNames.insert(broker.name).inserted else {
                    throw table.error("name", "broker '\(broker.name)' is listed twice")
                }
                config.brokers.append(broker)
                brokerTables.append(table)
            }
            for table in try mqtt.tables("routes") {
                config.routes.append(try readRoute(table))
                routeTables.append(table)
            }
            try mqtt.rejectUnknownKeys()
        }
        var upstreamTables: [TOMLTableReader] = []
        var upstreamNames: Set<String> = []
        for table in try reader.tables("upstreams") {
            let upstream = try readUpstream(table, environment: environment)
            guard upstreamNames.insert(upstream.name).inserted else {
                throw table.error("name", "upstream '\(upstream.name)' is listed twice")
            }
            config.upstreams.append(upstream)
            upstreamTables.append(table)
        }
        if let streams = try reader.table("streams") {
            if let records = try streams.int("cycle_records", in: 1...1_000_000) { config.streams.cycleRecords = records }
            if let interval = try streams.int("snapshot_interval_ms", in: 0...86_400_000) {
                config.streams.snapshotIntervalMs = Int64(interval)
            }
            if let records = try streams.int("snapshot_records", in: 1...1_000_000_000) { config.streams.snapshotRecords = Int64(records) }
            try streams.rejectUnknownKeys()
        }
        var processorNames: Set<String> = []
        for table in try reader.tables("processors") {
            guard let query = try table.string("query"), !query.isEmpty else {
                throw table.error(nil, "a processor needs a query (CREATE STREAM name AS SELECT ...)")
            }
            let name = try table.string("name")
            if let name {
                guard processorNames.insert(name).inserted else { throw table.error("name", "processor '\(name)' is listed twice") }
            }
            try table.rejectUnknownKeys()
            config.processors.append(.init(name: name, query: query))
        }
        try readConnectors(
            reader, file: file, brokers: brokerTables, routes: routeTables, upstreams: upstreamTables,
            environment: environment, into: &config)
        try reader.rejectUnknownKeys()

        if let token = environment["EDGELOG_HTTP_TOKEN"], !token.isEmpty { config.http.authToken = token }
        if let directory = environment["EDGELOG_DATA_DIR"], !directory.isEmpty { config.server.dataDirectory = directory }
        if let listen = environment["EDGELOG_KAFKA_LISTEN"], !listen.isEmpty {
            guard let address = KafkaBrokerAddress(listen) else {
                throw ConfigError(file: file, message: "EDGELOG_KAFKA_LISTEN: expected host:port, found \"\(listen)\"")
            }
            config.kafka.host = address.host
            config.kafka.port = address.port
        }
        return config
    }

    private static func readLogConfig(_ table: TOMLTableReader, base: LogConfig) throws(ConfigError) -> LogConfig {
        var log = base
        if let name = try table.string("codec") {
            guard let codec = CompressionCodec(name: name) else {
                throw table.error("codec", "'\(name)' is not one of none, gzip, snappy, lz4, zstd")
            }
            log.codec = codec
        }
        if let level = try table.int("compression_level", in: -1...22) { log.compressionLevel = Int32(level) }
        let interval = try table.int("flush_interval_ms", in: 1...3_600_000)
        switch try table.string("flush") {
        case nil:
            if let interval, case .interval = log.flush { log.flush = .interval(milliseconds: Int64(interval)) }
        case "always":
            log.flush = .always
        case "interval":
            log.flush = .interval(milliseconds: Int64(interval ?? 1000))
        case let other?:
            throw table.error("flush", "'\(other)' is not one of always, interval")
        }
        if let bytes = try table.int("segment_bytes", in: 4096...(1 << 31)) { log.segmentBytes = Int64(bytes) }
        if let hours = try table.int("segment_hours", in: 1...(24 * 365)) { log.segmentMs = Int64(hours) * 3_600_000 }
        if let hours = try table.int("retention_hours", in: 0...(24 * 365 * 100)) {
            log.retentionMs = hours == 0 ? nil : Int64(hours) * 3_600_000
        }
        if let bytes = try table.int("retention_bytes", in: 0...Int.max) { log.retentionBytes = bytes == 0 ? nil : Int64(bytes) }
        if let bytes = try table.int("max_batch_bytes", in: 1024...(64 << 20)) { log.maxBatchBytes = bytes }
        if let linger = try table.int("linger_ms", in: 0...10_000) { log.lingerMicroseconds = Int64(linger) * 1000 }
        if let interval = try table.int("index_interval_bytes", in: 128...(1 << 24)) { log.indexIntervalBytes = interval }
        return log
    }

    package static func readBroker(_ table: TOMLTableReader, environment: [String: String]) throws(ConfigError) -> Broker {
        let name = try table.string("name") ?? "default"
        guard !name.isEmpty, name.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "-" || $0 == "_" || $0 == "." }) else {
            throw table.error("name", "'\(name)' must be letters, digits, '-', '_' or '.'")
        }
        var broker = Broker(name: name)
        broker.host = try table.string("host") ?? broker.host
        broker.port = try table.int("port", in: 1...65535) ?? broker.port
        broker.clientId = try table.string("client_id") ?? broker.clientId
        if broker.clientId.isEmpty || broker.clientId.utf8.count > 65535 {
            throw table.error("client_id", "must be set: the broker keeps the persistent session under it")
        }
        broker.username = try table.optionalString("username")
        broker.password = try table.optionalString("password")
        let variable = "EDGELOG_MQTT_PASSWORD_" + String(name.uppercased().map { $0.isLetter || $0.isNumber ? $0 : "_" })
        if let password = environment[variable], !password.isEmpty { broker.password = password }
        for (key, keyPath) in [("tls_ca_file", \Broker.tlsCAFile), ("tls_cert_file", \.tlsCertFile), ("tls_key_file", \.tlsKeyFile)] {
            if let path = try table.optionalString(key) {
                guard FileManager.default.isReadableFile(atPath: path) else {
                    throw table.error(key, "cannot read \(path)")
                }
                broker[keyPath: keyPath] = path
            }
        }
        if (broker.tlsCertFile == nil) != (broker.tlsKeyFile == nil) {
            throw table.error("tls_cert_file", "tls_cert_file and tls_key_file go together")
        }
        broker.keepaliveSeconds = try table.int("keepalive_seconds", in: 5...65535) ?? broker.keepaliveSeconds
        broker.ack = try table.choice("ack", AckMode.self) ?? .durable
        broker.connections = try table.int("connections", in: 1...64) ?? 1
        broker.sharedGroup = try table.string("shared_group") ?? broker.sharedGroup
        broker.receiveMaximum = try table.int("receive_maximum", in: 1...65535) ?? broker.receiveMaximum
        broker.brokerStats = try table.bool("broker_stats") ?? broker.brokerStats
        try table.rejectUnknownKeys()
        return broker
    }

    package static func readUpstream(_ table: TOMLTableReader, environment: [String: String]) throws(ConfigError) -> Upstream {
        guard let name = try table.string("name") else { throw table.error(nil, "an upstream needs a name") }
        // The name is part of checkpoint file names.
        guard !name.isEmpty, name.count <= 100,
            name.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-" || $0 == "_" || $0 == ".") })
        else { throw table.error("name", "'\(name)' must be ASCII letters, digits, '-', '_' or '.'") }
        var upstream = Upstream(name: name)
        let bootstrap = try table.strings("bootstrap") ?? []
        guard !bootstrap.isEmpty else { throw table.error("bootstrap", "list at least one broker, as \"host:9092\"") }
        for entry in bootstrap {
            guard let address = KafkaBrokerAddress(entry) else {
                throw table.error("bootstrap", "expected host:port, found \"\(entry)\"")
            }
            upstream.bootstrap.append(address)
        }
        upstream.topicTemplate = try table.string("topic_template") ?? upstream.topicTemplate
        upstream.site = try table.string("site") ?? ""
        if upstream.topicTemplate.contains("{site}") && upstream.site.isEmpty {
            throw table.error("site", "topic_template uses {site}: set site")
        }
        do throws(StorageError) {
            try EdgeLogStorage.Topic.validate(name: upstream.upstreamTopic(for: "t"))
        } catch {
            throw table.error("topic_template", "gives invalid topic names: \(error)")
        }
        upstream.topics = try table.strings("topics") ?? []
        upstream.required = try table.bool("required") ?? true
        upstream.createTopics = try table.bool("create_topics") ?? true
        upstream.partitionMapping = try table.choice("partition_mapping", PartitionMapping.self) ?? .same
        upstream.clientId = try table.string("client_id") ?? upstream.clientId
        upstream.tls = try table.bool("tls") ?? false
        for (key, keyPath) in [("tls_ca_file", \Upstream.tlsCAFile), ("tls_cert_file", \.tlsCertFile), ("tls_key_file", \.tlsKeyFile)] {
            if let path = try table.optionalString(key) {
                guard FileManager.default.isReadableFile(atPath: path) else { throw table.error(key, "cannot read \(path)") }
                upstream[keyPath: keyPath] = path
                upstream.tls = true
            }
        }
        if (upstream.tlsCertFile == nil) != (upstream.tlsKeyFile == nil) {
            throw table.error("tls_cert_file", "tls_cert_file and tls_key_file go together")
        }
        upstream.tlsVerify = try table.bool("tls_verify") ?? true
        if let mechanism = try table.choice("sasl_mechanism", KafkaSASLCredentials.Mechanism.self) {
            guard let username = try table.optionalString("sasl_username") else {
                throw table.error("sasl_username", "sasl_mechanism needs sasl_username")
            }
            let variable = "EDGELOG_UPSTREAM_PASSWORD_" + String(name.uppercased().map { $0.isLetter || $0.isNumber ? $0 : "_" })
            let filePassword = try table.optionalString("sasl_password")
            guard let password = environment[variable].flatMap({ $0.isEmpty ? nil : $0 }) ?? filePassword else { throw table.error("sasl_password", "set sasl_password or \(variable)") }
            upstream.sasl = KafkaSASLCredentials(mechanism: mechanism, username: username, password: password)
        }
        if let rate = try table.int("max_bytes_per_second", in: 0...(1 << 40)), rate > 0 { upstream.maxBytesPerSecond = rate }
        upstream.maxInFlight = try table.int("max_in_flight", in: 1...5) ?? upstream.maxInFlight
        upstream.maxRequestBytes = try table.int("max_request_bytes", in: 1024...(64 << 20)) ?? upstream.maxRequestBytes
        upstream.inSyncMaxLagRecords = Int64(try table.int("in_sync_max_lag_records", in: 0...Int.max) ?? 10_000)
        upstream.inSyncMaxLagSeconds = try table.int("in_sync_max_lag_seconds", in: 0...86_400 * 365) ?? 30
        upstream.checkpointIntervalMs = try table.int("checkpoint_interval_ms", in: 10...600_000) ?? 1000
        upstream.requestTimeoutMs = try table.int("request_timeout_ms", in: 100...600_000) ?? 30_000
        upstream.retryBackoffMs = try table.int("retry_backoff_ms", in: 1...600_000) ?? 100
        upstream.retryBackoffMaxMs = try table.int("retry_backoff_max_ms", in: upstream.retryBackoffMs...3_600_000) ?? max(10_000, upstream.retryBackoffMs)
        try table.rejectUnknownKeys()
        return upstream
    }

    package static func readRoute(_ table: TOMLTableReader) throws(ConfigError) -> Route {
        guard let pattern = try table.string("filter") else { throw table.error(nil, "a route needs a filter") }
        let filter: TopicFilter
        do throws(TopicFilterError) { filter = try TopicFilter(pattern) } catch {
            throw table.error("filter", error.description)
        }
        guard let topic = try table.string("topic") else { throw table.error(nil, "a route needs a log topic") }
        do throws(StorageError) { try EdgeLogStorage.Topic.validate(name: topic) } catch {
            throw table.error("topic", error.description)
        }
        var key: KeyTemplate? = nil
        if let template = try table.optionalString("key") {
            do throws(TopicFilterError) { key = try KeyTemplate(template, captures: filter.captureNames) } catch {
                throw table.error("key", error.description)
            }
        }
        try table.rejectUnknownKeys()
        return Route(filter: filter, topic: topic, key: key)
    }
}
