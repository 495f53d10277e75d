// swift-tools-version:5.7
import PackageDescription

let package = Package(
    name: "ParleyClient",
    platforms: [.iOS(.v13), .macOS(.v10_15)],
    products: [.library(name: "ParleyClient", targets: ["ParleyClient"])],
    targets: [.target(name: "ParleyClient", path: "Sources/ParleyClient")]
)
