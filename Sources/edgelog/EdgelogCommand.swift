import ArgumentParser
import EdgeLogCore

/// The `edgelog` command line. Each subcommand lives in its own file; a new one is added by
/// listing it in `subcommands` below.
///
/// The root is an `AsyncParsableCommand` so that async subcommands (a server) can run under it;
/// synchronous ones run as they are.
@main
struct Edgelog: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "edgelog",
        abstract: "An edge ingestion gateway with a Kafka-format commit log",
        version: EdgelogVersion.current,
        subcommands: [
            ServeCommand.self,
            ConfigCommand.self,
            StatusCommand.self,
            ReplicationCommand.self,
            ConnectCommand.self,
            StreamsCommand.self,
            ProduceCommand.self,
            ConsumeCommand.self,
            TopicsCommand.self,
            LogCommand.self,
            DemoCommand.self,
            BenchCommand.self,
        ])
}
