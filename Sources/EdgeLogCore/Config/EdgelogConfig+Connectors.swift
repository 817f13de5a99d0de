import EdgeLogTOML

/// The file's connectors: `[http]` (named "http"), each `[[mqtt.brokers]]` entry with the
/// `[[mqtt.routes]]`, each `[[upstreams]]` entry, and the `[[connectors]]` tables, which name
/// their `type` and take that type's keys.
extension EdgelogConfig {
    static func readConnectors(
        _ reader: TOMLTableReader, file: String, brokers: [TOMLTableReader], routes: [TOMLTableReader],
        upstreams: [TOMLTableReader], environment: [String: String], into config: inout EdgelogConfig
    ) throws(ConfigError) {
        var specs: [ConnectorSpec] = []
        var lines: [String: Int] = [:]
        func add(_ spec: ConnectorSpec, _ table: TOMLTableReader) throws(ConfigError) {
            if let first = lines[spec.name] {
                throw table.error("name", "connector name '\(spec.name)' is used twice (first at line \(first))")
            }
            lines[spec.name] = table.table.line
            specs.append(spec)
        }
        if config.http.enabled {
            var http = ConnectorSpec.HTTPSource()
            http.maxBodyBytes = config.http.maxBodyBytes
            let table = try reader.table("http") ?? TOMLTableReader(table: TOMLTable(entries: [], line: 0), path: "http", file: file)
            try add(
                ConnectorSpec(
                    name: "http", type: .httpSource, config: ConnectorConfig(table.table), settings: .http(http),
                    origin: .file(path: file, line: table.table.line)),
                table)
        }
        let routeConfig = ConnectorConfig.Value.array(routes.map { .table(ConnectorConfig($0.table).entries) })
        for (broker, table) in zip(config.brokers, brokers) {
            var given = ConnectorConfig(table.table, skipping: ["name"])
            given["routes"] = routeConfig
            try add(
                ConnectorSpec(
                    name: broker.name, type: .mqttSource, config: given, settings: .mqtt(broker, routes: config.routes),
                    origin: .file(path: file, line: table.table.line)),
                table)
        }
        for (upstream, table) in zip(config.upstreams, upstreams) {
            try add(
                ConnectorSpec(
                    name: upstream.name, type: .upstreamSink, config: ConnectorConfig(table.table, skipping: ["name"]),
                    settings: .upstream(upstream), origin: .file(path: file, line: table.table.line)),
                table)
        }
        for table in try reader.tables("connectors") {
            guard let name = try table.string("name") else { throw table.error(nil, "a connector needs a name") }
            if let problem = ConnectorSpec.validate(name: name) { throw table.error("name", problem) }
            guard let typeName = try table.string("type") else {
                throw table.error(nil, "a connector needs a type: \(ConnectorType.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            guard let type = ConnectorType(rawValue: typeName) else {
                throw table.error("type", "unknown connector type '\(typeName)'; known: \(ConnectorType.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            let settings = try type.read(table, environment: environment)
            try add(
                ConnectorSpec(
                    name: name, type: type, config: ConnectorConfig(table.table, skipping: ["name", "type"]), settings: settings,
                    origin: .file(path: file, line: table.table.line)),
                table)
        }
        config.connectors = specs
    }
}
