/// The release version: `edgelog --version`, and the Debian package's version
/// (`scripts/build-deb` reads it from the binary). Raise it with each release.
enum EdgelogVersion {
    static let current = "0.6.0"
}
