/// The release version: `edgelog --version`, the connector plugins' version, and the Debian
/// package's version (`scripts/build-deb` reads it from the binary). Raise it with each release.
package enum EdgelogVersion {
    package static let current = "0.7.0"
}
