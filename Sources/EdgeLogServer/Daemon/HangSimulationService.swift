import Logging
import ServiceLifecycle
import Synchronization
import UnixSignals
import EdgeLogCore
import EdgeLogMQTT
import EdgeLogReplication
import EdgeLogKafkaListener
import EdgeLogHTTP

/// With `EDGELOG_HANG_SIGNAL=1` in its environment, SIGUSR2 makes the daemon behave as if it
/// hung, for the systemd watchdog only: it keeps serving, but ``WatchdogService`` stops
/// sending `WATCHDOG=1`, so systemd kills it `WatchdogSec=` later and `Restart=on-failure`
/// brings it back. This is how `scripts/test-systemd` proves the watchdog restarts a stuck
/// daemon without having to wedge a real thread. A second SIGUSR2 resumes the petting.
/// Without the variable SIGUSR2 is logged and ignored (its default action would kill the
/// daemon).
struct HangSimulationService: Service {
    let stalled: WatchdogStall
    let enabled: Bool
    let logger: Logger

    func run() async throws {
        let signals = await UnixSignalsSequence(trapping: .sigusr2)
        await cancelWhenGracefulShutdown {
            for await _ in signals {
                guard enabled else {
                    logger.notice("SIGUSR2 ignored (EDGELOG_HANG_SIGNAL=1 makes it simulate a hang for the watchdog)")
                    continue
                }
                let nowStalled = stalled.toggle()
                logger.warning(
                    nowStalled
                        ? "SIGUSR2: simulating a hang, the systemd watchdog is no longer petted"
                        : "SIGUSR2: hang simulation ended, petting the systemd watchdog again")
            }
        }
    }
}

/// Whether the watchdog should be starved (set by ``HangSimulationService``).
final class WatchdogStall: Sendable {
    private let value = Atomic<Bool>(false)

    var isStalled: Bool { value.load(ordering: .acquiring) }

    /// Flips the flag and returns the new value.
    func toggle() -> Bool {
        !value.logicalXor(true, ordering: .acquiringAndReleasing).oldValue
    }
}
