// swift-tools-version:6.0
import PackageDescription

let package = Package(
    name: "liaptui-ops",
    platforms: [.macOS(.v14)],
    products: [
        .library(name: "GameEngine", targets: ["GameEngine"]),
        .executable(name: "liaptui-bench", targets: ["liaptui-bench"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
    ],
    targets: [
        // The engine is pure computation; optimised even in debug builds, the
        // 10,000-game property test takes seconds instead of minutes.
        .target(name: "GameEngine", swiftSettings: [.unsafeFlags(["-O"])]),
        .executableTarget(
            name: "liaptui-bench",
            dependencies: [
                "GameEngine",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]),
        .testTarget(name: "GameEngineTests", dependencies: ["GameEngine"]),
    ]
)
