// swift-tools-version:6.1
import PackageDescription

// One set of settings for every target (hummingbird's Package.swift does the same).
let swiftSettings: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
    .enableUpcomingFeature("InternalImportsByDefault"),
]

let package = Package(
    name: "edgelog",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "edgelog", targets: ["edgelog"]),
        .library(name: "EdgeLogStorage", targets: ["EdgeLogStorage"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-metrics.git", from: "2.13.0"),
        .package(url: "https://github.com/hummingbird-project/hummingbird.git", from: "2.28.1"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.4.1"),
        .package(url: "https://github.com/swift-server/async-http-client.git", from: "1.37.0"),
        .package(url: "https://github.com/apple/swift-nio-ssl.git", from: "2.37.6"),
        .package(url: "https://github.com/apple/swift-crypto.git", "3.12.3"..<"5.0.0"),
        .package(url: "https://github.com/apple/swift-collections.git", from: "1.6.0"),
    ],
    targets: [
        // Debian's C libraries, found through pkg-config. zlib is used directly rather than
        // through compress-nio because a storage engine must tell a truncated gzip stream
        // from a finished one, which compress-nio's inflate wrapper does not report.
        .systemLibrary(
            name: "CZlib",
            pkgConfig: "zlib",
            providers: [.apt(["zlib1g-dev"])]
        ),
        // `edgelog log dump` and `log verify`: reading a log's files without opening it.
        .target(
            name: "EdgeLogInspector",
            dependencies: [
                "EdgeLogStorage",
                .product(name: "NIOCore", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings
        ),
        .systemLibrary(
            name: "CZstd",
            pkgConfig: "libzstd",
            providers: [.apt(["libzstd-dev"])]
        ),
        .systemLibrary(
            name: "CLZ4",
            pkgConfig: "liblz4",
            providers: [.apt(["liblz4-dev"])]
        ),
        .systemLibrary(
            name: "CSnappy",
            pkgConfig: "snappy",
            providers: [.apt(["libsnappy-dev"])]
        ),
        .systemLibrary(
            name: "CMosquitto",
            pkgConfig: "libmosquitto",
            providers: [.apt(["libmosquitto-dev"])]
        ),
        // TOML 1.0, parsed in Swift: the C++ parser inside TOMLKit aborted on malformed files.
        .target(name: "EdgeLogTOML", swiftSettings: swiftSettings),
        // CRC-32C with the CPU's own instruction (SSE 4.2 or ARMv8 CRC) where it has one.
        .target(name: "CCRC32C"),
        // Kafka's record batch format: records, batches, codecs, CRC-32C, the partitioner.
        .target(
            name: "EdgeLogRecords",
            dependencies: [
                "CCRC32C", "CZlib", "CZstd", "CLZ4", "CSnappy",
                .product(name: "NIOCore", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings
        ),
        // The log: segments, indexes, partitions, recovery, retention (re-exports the records).
        .target(
            name: "EdgeLogStorage",
            dependencies: [
                "EdgeLogRecords",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
            ],
            swiftSettings: swiftSettings
        ),
        // Kafka wire protocol: codecs generated from Apache Kafka's message specs by
        // scripts/generate-kafka-codecs, and the SwiftNIO client the replicator uses.
        .target(
            name: "EdgeLogKafka",
            dependencies: [
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "NIOTLS", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Crypto", package: "swift-crypto"),
            ],
            swiftSettings: swiftSettings
        ),
        // What every part shares: the configuration model, the ingestor through which
        // sources append, loss markers, JSON, the daemon's phase.
        .target(
            name: "EdgeLogCore",
            dependencies: [
                "EdgeLogStorage", "EdgeLogKafka", "EdgeLogTOML",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: swiftSettings
        ),
        // Connect: the connector runtime (states, restarts with backoff, persistence of run-time
        // connectors); each connector family's module plugs into it (ConnectorFamily).
        .target(
            name: "EdgeLogConnect",
            dependencies: [
                "EdgeLogCore", "EdgeLogStorage",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: swiftSettings
        ),
        // Streams: processors written in a SQL subset close to ksqlDB and eKuiper.
        .target(
            name: "EdgeLogStreams",
            dependencies: [
                "EdgeLogCore", "EdgeLogStorage",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "HeapModule", package: "swift-collections"),
            ],
            swiftSettings: swiftSettings
        ),
        // Sources: MQTT (a client of the box's broker through libmosquitto).
        .target(
            name: "EdgeLogMQTT",
            dependencies: [
                "EdgeLogCore", "EdgeLogConnect", "EdgeLogStorage", "CMosquitto",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: swiftSettings
        ),
        // Sinks: replication of the log to upstream Kafka clusters.
        .target(
            name: "EdgeLogReplication",
            dependencies: [
                "EdgeLogCore", "EdgeLogConnect", "EdgeLogStorage", "EdgeLogKafka",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: swiftSettings
        ),
        // The Kafka listener: producers and consumers of the box speak Kafka to it.
        .target(
            name: "EdgeLogKafkaListener",
            dependencies: [
                "EdgeLogCore", "EdgeLogStorage", "EdgeLogKafka",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Crypto", package: "swift-crypto"),
            ],
            swiftSettings: swiftSettings
        ),
        // The HTTP API: ingest, reads, topics, and the status the parts report (StatusReporter):
        // it depends on no source or sink.
        .target(
            name: "EdgeLogHTTP",
            dependencies: [
                "EdgeLogCore", "EdgeLogConnect", "EdgeLogStorage", "EdgeLogStreams",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: swiftSettings
        ),
        // The daemon: assembles the parts above into services and runs them.
        .target(
            name: "EdgeLogServer",
            dependencies: [
                "EdgeLogStorage", "EdgeLogKafka", "EdgeLogTOML", "EdgeLogCore", "EdgeLogMQTT", "EdgeLogReplication",
                "EdgeLogKafkaListener", "EdgeLogHTTP", "EdgeLogConnect", "EdgeLogStreams",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Prometheus", package: "swift-prometheus"),
            ],
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "edgelog",
            dependencies: [
                "EdgeLogStorage", "EdgeLogServer", "EdgeLogCore", "EdgeLogMQTT", "EdgeLogReplication", "EdgeLogKafkaListener", "EdgeLogHTTP", "EdgeLogKafka", "EdgeLogConnect",
                "EdgeLogTOML", "EdgeLogInspector", "EdgeLogStreams",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            swiftSettings: swiftSettings
        ),
        // libFuzzer targets for the decoders of bytes from outside (see FuzzMain for how to
        // build them with -sanitize=fuzzer); a normal build replays their corpora.
        .executableTarget(
            name: "edgelog-fuzz",
            dependencies: [
                "EdgeLogKafka", "EdgeLogTOML", "EdgeLogStorage", "EdgeLogInspector", "EdgeLogStreams", "EdgeLogServer", "EdgeLogCore", "EdgeLogMQTT", "EdgeLogReplication", "EdgeLogKafkaListener", "EdgeLogHTTP",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "EdgeLogStreamsTests",
            dependencies: [
                "EdgeLogStreams", "EdgeLogStorage",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "EdgeLogStorageTests",
            dependencies: [
                "EdgeLogStorage", "EdgeLogRecords", "EdgeLogInspector",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "EdgeLogTOMLTests",
            dependencies: ["EdgeLogTOML"],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "EdgeLogKafkaTests",
            dependencies: [
                "EdgeLogKafka",
                .product(name: "NIOCore", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "EdgeLogServerTests",
            dependencies: [
                "EdgeLogServer", "EdgeLogStorage", "EdgeLogRecords", "EdgeLogKafka", "EdgeLogTOML", "EdgeLogCore", "EdgeLogMQTT", "EdgeLogReplication", "EdgeLogKafkaListener", "EdgeLogHTTP", "EdgeLogConnect", "EdgeLogStreams",
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdTesting", package: "hummingbird"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
            ],
            swiftSettings: swiftSettings
        ),
    ]
)
