public import ArgumentParser
import EdgeLogServer
import Foundation
public import Logging
import EdgeLogCore
import EdgeLogStreams

/// `edgelog serve`: the daemon.
struct ServeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: "Run the daemon: MQTT and HTTP ingest into the local commit log.",
        discussion: "Without --config it runs on the embedded defaults (config/dev.toml): data under ./data, HTTP on 127.0.0.1:8080, the local mosquitto on 1883.")

    @Option(help: "The configuration file (TOML).")
    var config: String?

    @Option(help: "Override server.data_dir.")
    var dataDir: String?

    @Option(help: "Log level: trace, debug, info, notice, warning, error, critical.")
    var logLevel: Logger.Level = .info

    func run() async throws {
        LoggingSystem.bootstrap { label in
            var handler = JournalLogHandler(label: label)
            handler.logLevel = logLevel
            return handler
        }
        Daemon.bootstrapMetrics()
        let logger = Logger(label: "edgelog")
        var settings: EdgelogConfig
        do {
            if let config {
                settings = try EdgelogConfig.load(file: config)
            } else {
                settings = try EdgelogConfig.embeddedDefaults(environment: ProcessInfo.processInfo.environment)
            }
        } catch {
            logger.critical("invalid configuration: \(error)")
            throw ExitCode(78)  // EX_CONFIG: systemd does not restart-loop on it with RestartPreventExitStatus
        }
        do { try ConfigCheckCommand.checkProcessors(settings, file: config ?? "embedded defaults") } catch {
            logger.critical("invalid configuration: \(error)")
            throw ExitCode(78)
        }
        if let dataDir { settings.server.dataDirectory = dataDir }
        try await Daemon.run(config: settings, configPath: config, logger: logger)
    }
}

extension Logger.Level: @retroactive ExpressibleByArgument {}

/// `edgelog config check FILE`: validates without starting.
struct ConfigCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "config", abstract: "Work with configuration files.", subcommands: [ConfigCheckCommand.self])
}

struct ConfigCheckCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "check", abstract: "Validate a configuration file; exit 1 with file:line: key: problem if it is wrong.")

    @Argument(help: "The configuration file.")
    var file: String

    func run() throws {
        do {
            let config = try EdgelogConfig.load(file: file)
            try Self.checkProcessors(config, file: file)
            print(
                "\(file): OK (data in \(config.server.dataDirectory), HTTP \(config.http.enabled ? "\(config.http.host):\(config.http.port)" : "off"), \(config.topics.count) topics, \(config.brokers.count) MQTT brokers, \(config.routes.count) routes, \(config.processors.count) processors, connectors: \(config.connectors.map { "\($0.name) (\($0.type.rawValue))" }.joined(separator: ", ")))")
        } catch {
            FileHandle.standardError.write(Data("\(error)\n".utf8))
            throw ExitCode(1)
        }
    }

    /// Every `[[processors]]` query plans (the TOML reader cannot judge SQL).
    static func checkProcessors(_ config: EdgelogConfig, file: String) throws {
        var names: Set<String> = []
        for (index, processor) in config.processors.enumerated() {
            let plan: ProcessorPlan
            do { plan = try StreamsRuntime.plan(processor.query, expectedName: processor.name) } catch {
                throw ProcessorConfigError(description: "\(file): processors[\(index)]: \(error)")
            }
            guard names.insert(plan.name).inserted else {
                throw ProcessorConfigError(description: "\(file): processors[\(index)]: processor '\(plan.name)' is defined twice")
            }
        }
    }
}

struct ProcessorConfigError: Error, CustomStringConvertible {
    var description: String
}
