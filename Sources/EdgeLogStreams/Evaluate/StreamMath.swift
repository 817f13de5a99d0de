#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// The C library's transcendental functions, under names that do not clash with the
/// processor language's own (ScalarFunction has cases called `power` and `ln`).
enum StreamMath {
    static func pow(_ base: Double, _ exponent: Double) -> Double { powl_(base, exponent) }
    static func log(_ value: Double) -> Double { log_(value) }
}

private func powl_(_ base: Double, _ exponent: Double) -> Double { pow(base, exponent) }
private func log_(_ value: Double) -> Double { log(value) }
