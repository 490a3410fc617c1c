// swift-tools-version:6.0
import PackageDescription

let package = Package(
    name: "liaptui-ops",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "game-server", targets: ["game-server"]),
        .executable(name: "metrics-agent", targets: ["metrics-agent"]),
        .executable(name: "liaptui-bench", targets: ["liaptui-bench"]),
        .executable(name: "liaptui-load", targets: ["liaptui-load"]),
        .library(name: "GameEngine", targets: ["GameEngine"]),
        .library(name: "MetricsSchema", targets: ["MetricsSchema"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-log", from: "1.6.0"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.80.0"),
        .package(url: "https://github.com/apple/swift-crypto", from: "3.12.0"),
        .package(url: "https://github.com/apple/swift-http-types", from: "1.3.0"),
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.20.0"),
        .package(url: "https://github.com/hummingbird-project/hummingbird-websocket", from: "2.6.0"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.8.0"),
        .package(url: "https://github.com/swift-server/async-http-client", from: "1.25.0"),
        .package(url: "https://github.com/groue/GRDB.swift", from: "7.0.0"),
        .package(url: "https://github.com/jpsim/Yams", from: "6.0.0"),
        .package(url: "https://github.com/adam-fowler/compress-nio", from: "1.4.0"),
        // Alert message templates (issue 21): Mustache, a logic-less engine ops know from Alertmanager-like tools.
        .package(url: "https://github.com/hummingbird-project/swift-mustache", from: "2.0.0"),
        // STARTTLS for the e-mail receiver; already in the graph through async-http-client.
        .package(url: "https://github.com/apple/swift-nio-ssl", from: "2.29.0"),
        // HTTP/1 parts as swift-http-types for the game server's own WebSocket upgrade channel; already in the graph through hummingbird.
        .package(url: "https://github.com/apple/swift-nio-extras", from: "1.24.0"),
    ],
    targets: [
        // The engine is pure computation; optimised even in debug builds, the
        // 10,000-game property test takes seconds instead of minutes.
        .target(name: "GameEngine", swiftSettings: [.unsafeFlags(["-O"])]),
        .target(name: "JSONCore"),
        // The flag-or-environment rule every executable follows.
        .target(name: "CommandSupport", dependencies: [.product(name: "ArgumentParser", package: "swift-argument-parser")]),
        // No Swift Redis package is available here: a small RESP client on SwiftNIO.
        .target(
            name: "RedisClient",
            dependencies: [.product(name: "NIOCore", package: "swift-nio"), .product(name: "NIOPosix", package: "swift-nio")]),
        .target(name: "MetricsSchema", dependencies: ["JSONCore"]),
        .target(
            name: "GameServer",
            dependencies: [
                "GameEngine", "MetricsSchema", "JSONCore", "RedisClient",
                .product(name: "Hummingbird", package: "hummingbird"),
                // The server's own child channel (GameChannel): HTTP through Hummingbird, WebSockets on the event loop.
                .product(name: "HummingbirdCore", package: "hummingbird"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOHTTPTypesHTTP1", package: "swift-nio-extras"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOWebSocket", package: "swift-nio"),
            ],
            resources: [.copy("Public")]),
        .target(
            name: "LiapTuiClient",
            dependencies: [
                "JSONCore",
                "MetricsSchema",
                .product(name: "HummingbirdWSClient", package: "hummingbird-websocket"),
                .product(name: "NIOWebSocket", package: "swift-nio"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "Logging", package: "swift-log"),
            ]),
        .executableTarget(
            name: "liaptui-load",
            dependencies: ["LiapTuiClient", "JSONCore", "CommandSupport", .product(name: "ArgumentParser", package: "swift-argument-parser"),
                           .product(name: "Logging", package: "swift-log")]),
        .executableTarget(
            name: "game-server",
            dependencies: ["GameServer", "RedisClient", "CommandSupport", .product(name: "ArgumentParser", package: "swift-argument-parser")]),
        .target(
            name: "Alerting",
            dependencies: [
                "MetricsSchema", "JSONCore",
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Yams", package: "Yams"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "Mustache", package: "swift-mustache"),
            ]),
        .target(
            name: "MetricsAgent",
            dependencies: [
                "MetricsSchema", "JSONCore", "Alerting",
                // Pulls from the other agents of a fleet (the same client the alert delivery uses).
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Yams", package: "Yams"),
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "GRDBSQLite", package: "GRDB.swift"),
                .product(name: "CompressNIO", package: "compress-nio"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            resources: [.copy("Public")]),
        .executableTarget(
            name: "metrics-agent",
            dependencies: ["MetricsAgent", "Alerting", "MetricsSchema", "JSONCore", "CommandSupport", .product(name: "ArgumentParser", package: "swift-argument-parser")]),
        .executableTarget(
            name: "liaptui-bench",
            dependencies: [
                "GameEngine", "GameServer", "MetricsSchema", "JSONCore", "LiapTuiClient", "RedisClient",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]),
        .testTarget(name: "GameEngineTests", dependencies: ["GameEngine"]),
        .target(
            name: "TestSupport",
            dependencies: [
                "JSONCore", "LiapTuiClient", "MetricsSchema",
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
            ],
            path: "Tests/TestSupport"),
        .testTarget(
            name: "DeployTests",
            dependencies: ["Alerting", "JSONCore", "TestSupport", .product(name: "Yams", package: "Yams")]),
        .testTarget(
            name: "AlertingTests",
            dependencies: ["Alerting", "MetricsAgent", "MetricsSchema", "JSONCore", "LiapTuiClient", "TestSupport", .product(name: "GRDB", package: "GRDB.swift")],
            exclude: ["Golden"]),
        .testTarget(name: "MetricsSchemaTests", dependencies: ["MetricsSchema", "JSONCore"]),
        .testTarget(name: "RedisClientTests", dependencies: ["RedisClient", "TestSupport", .product(name: "NIOCore", package: "swift-nio")]),
        .testTarget(
            name: "MetricsAgentTests",
            dependencies: ["MetricsAgent", "MetricsSchema", "JSONCore", "TestSupport", .product(name: "GRDB", package: "GRDB.swift")]),
        .testTarget(
            name: "GameServerTests",
            dependencies: ["GameServer", "GameEngine", "MetricsSchema", "JSONCore", "LiapTuiClient", "TestSupport"]),
    ]
)
