import EdgeLogStorage
import Logging
import ServiceLifecycle
import UnixSignals
import EdgeLogCore
import EdgeLogMQTT
import EdgeLogReplication
import EdgeLogKafkaListener
import EdgeLogHTTP
import EdgeLogConnect

/// SIGHUP (`systemctl reload`): re-reads the configuration and applies what is safe to apply
/// while running: topics that are new in the file are created, and the file's connectors
/// (brokers, upstreams, `[[connectors]]`) are added, reconfigured or removed. Listeners and
/// storage settings of existing topics need a restart. A file with errors changes nothing.
struct ReloadService: Service {
    let configPath: String
    let manager: LogManager
    let connectors: ConnectorRuntime
    let notifier: SystemdNotifier
    let logger: Logger

    func run() async throws {
        let signals = await UnixSignalsSequence(trapping: .sighup)
        await cancelWhenGracefulShutdown {
            for await _ in signals {
                _ = notifier.reloading()
                reload()
                _ = notifier.ready(status: "reloaded")
            }
        }
    }

    func reload() {
        do {
            let config = try EdgelogConfig.load(file: configPath)
            var created: [String] = []
            for topic in config.topics where manager.topic(topic.name) == nil {
                try manager.createTopic(topic.name, partitions: topic.partitions, config: topic.log)
                created.append(topic.name)
            }
            connectors.reload(fileConnectors: config.connectors)
            logger.info(
                "configuration reloaded",
                metadata: ["edgelog.created_topics": "\(created)", "edgelog.routes": "\(config.routes.count)"])
        } catch {
            logger.error("configuration not reloaded", metadata: ["edgelog.error": "\(error)"])
        }
    }
}
