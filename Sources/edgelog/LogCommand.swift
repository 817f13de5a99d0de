import ArgumentParser

/// `edgelog log …`: offline tools for partition directories, safe while the daemon is stopped
/// and on copies, because they only read.
struct LogCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "log",
        abstract: "Inspect and verify partition directories offline (read-only).",
        subcommands: [
            LogDumpCommand.self,
            LogVerifyCommand.self,
        ])
}
