import Foundation
import MetricsSchema
import Hummingbird
import HummingbirdCore
import Logging
import ServiceLifecycle
import Synchronization

/// Whether the server is draining, and since when it runs.
public final class Lifecycle: Sendable {
    private let shuttingDown = Atomic<Bool>(false)
    let startedAt = ContinuousClock.now

    public var isShuttingDown: Bool { shuttingDown.load(ordering: .relaxed) }
    func beginShutdown() { shuttingDown.store(true, ordering: .relaxed) }
    var uptime: Duration { .now - startedAt }
}

/// The game server: HTTP and WebSocket endpoints, the metrics writer, the idle
/// room sweeper and the graceful-restart coordinator, run as one ServiceGroup.
public struct GameServerApp: Sendable {
    public let config: ServerConfig
    public let logger: Logger
    public let metrics = ServerMetrics()
    public let lifecycle = Lifecycle()
    public let clock: WallClock
    public let directory: RoomDirectory
    public let writer: MetricsWriter

    public init(config: ServerConfig, logger: Logger) {
        self.config = config
        self.logger = logger
        clock = WallClock(startingAt: config.clockStart)
        directory = RoomDirectory(config: config, metrics: metrics, clock: clock, logger: logger)
        writer = MetricsWriter(config: config, metrics: metrics, directory: directory, clock: clock,
                               logger: logger, startedAt: lifecycle.startedAt)
    }

    /// The folder of the browser client: `--web-root`, or the copy bundled with the executable.
    var webRoot: String {
        config.webRoot ?? Bundle.module.resourceURL!.appendingPathComponent("Public").path
    }

    /// Restores saved rooms. A damaged state file is reported and skipped, never fatal:
    /// losing saved games is bad, refusing to start is worse.
    func restoreState() async {
        do {
            guard let state = try StateStore(path: config.stateFile).loadAndRetire() else { return }
            await directory.restore(await directory.notAdoptedElsewhere(state.rooms))
            logger.notice("restored saved rooms", metadata: ["rooms": "\(state.rooms.count)", "saved_at": "\(state.savedAt)"])
        } catch {
            logger.error("could not restore saved rooms; starting empty", metadata: ["error": "\(error)"])
        }
    }

    func buildApplication() -> some ApplicationProtocol {
        let router = Router()
        router.middlewares.add(InstanceMiddleware(instanceID: config.instanceID))
        HTTPRoutes(config: config, metrics: metrics, directory: directory, lifecycle: lifecycle,
                   resources: ResourceMonitor(), clock: clock).add(to: router)
        router.middlewares.add(FileMiddleware(webRoot, searchForIndexHtml: true, logger: logger))

        let session = WebSocketSession(directory: directory, metrics: metrics, config: config, clock: clock, logger: logger)
        let lifecycle = lifecycle
        return Application(
            router: router,
            server: HTTPServerBuilder { responder in
                GameChannel(responder: responder, session: session, isDraining: { lifecycle.isShuttingDown })
            },
            configuration: .init(address: .hostname(config.host, port: config.port), serverName: "liaptui-game-server"),
            onServerRunning: { [logger] channel in
                // Tests (and scripts) started with --port 0 read the real port from this line.
                logger.notice("accepting connections", metadata: ["port": "\(channel.localAddress?.port ?? 0)"])
            },
            logger: logger)
    }

    /// Runs until SIGTERM or SIGINT, then restarts gracefully (see ShutdownCoordinator).
    public func run() async throws {
        await restoreState()
        var services: [any Service] = [
            buildApplication(),
            PeriodicService(name: "metrics-writer") { [writer] in await writer.run() },
            PeriodicService(name: "room-sweeper") { [directory] in
                while !Task.isCancelled {
                    do { try await Task.sleep(for: .seconds(min(30, max(1, config.roomIdleTimeout.seconds / 4)))) } catch { return }
                    await directory.sweepIdle()
                }
            },
            ShutdownCoordinator(app: self),
        ]
        if config.redis != nil {
            // Before the coordinator, which must stay last: it stops first on SIGTERM.
            services.insert(PeriodicService(name: "fleet-heartbeat") { [directory, config] in
                while !Task.isCancelled {
                    await directory.exchangeWithFleet()
                    do { try await Task.sleep(for: config.redisHeartbeat) } catch { return }
                }
            }, at: services.count - 1)
            services.insert(PeriodicService(name: "fleet-watch") { [directory] in
                while !Task.isCancelled {
                    do { try await Task.sleep(for: .milliseconds(250)) } catch { return }
                    await directory.watchFleet()
                }
            }, at: services.count - 1)
        }
        var groupConfig = ServiceGroupConfiguration(services: services, gracefulShutdownSignals: [.sigterm, .sigint], logger: logger)
        groupConfig.maximumGracefulShutdownDuration = config.shutdownGrace + .seconds(4)
        logger.notice("game server starting", metadata: [
            "address": "\(config.host):\(config.port)", "instance_id": "\(config.instanceID)",
            "log_dir": "\(config.logDirectory)", "state_file": "\(config.stateFile)",
        ])
        try await ServiceGroup(configuration: groupConfig).run()
        logger.notice("game server stopped")
    }
}

/// A background loop that stops when graceful shutdown reaches it.
struct PeriodicService: Service {
    let name: String
    let body: @Sendable () async -> Void

    func run() async throws {
        await cancelWhenGracefulShutdown { await body() }
    }
}

/// Stops first on SIGTERM (it is last in the group): turns health to 503, tells
/// every client `server_shutdown`, lets games go on for the grace period, writes
/// a final metrics line, saves rooms and games, and closes sockets with 1001.
struct ShutdownCoordinator: Service {
    let app: GameServerApp

    func run() async throws {
        do { try await gracefulShutdown() } catch { return }
        let grace = app.config.shutdownGrace
        app.lifecycle.beginShutdown()
        if let peer = await app.directory.handoverPeer() {
            // A fleet: hand the games to a live peer now instead of keeping players waiting for the grace.
            let rooms = await app.directory.handOver(to: peer, message: "The server is restarting. Your game moves to another server.")
            app.logger.notice("rooms handed over", metadata: ["rooms": "\(rooms)", "to": "\(peer)"])
            await app.writer.writeLine()
            // The peer owns them now: a state file would bring them back here on the next start.
            try? FileManager.default.removeItem(atPath: app.config.stateFile)
            let connected = app.metrics.connections > 0
            await app.directory.closeAllConnections()
            if connected { try? await Task.sleep(for: .milliseconds(300)) }  // let the close frames go out
            return
        }
        app.logger.notice("shutting down: notifying players", metadata: ["grace_seconds": "\(Int(grace.seconds))"])
        await app.directory.beginShutdown(
            message: "The server is restarting in \(Int(grace.seconds)) seconds. Your game is saved; you will be reconnected.",
            reconnectDelay: Int(grace.seconds) + app.config.reconnectDelaySeconds)
        // The grace is for players; with nobody connected and no room to save, there is nothing to wait for.
        let end = ContinuousClock.now + grace
        while ContinuousClock.now < end {
            if app.metrics.connections == 0, await app.directory.gauges().activeRooms == 0 {
                app.logger.notice("no rooms and no connections: not waiting for the grace")
                break
            }
            try? await Task.sleep(for: min(.milliseconds(100), end - ContinuousClock.now))
        }
        await app.writer.writeLine()
        let rooms = await app.directory.freezeAndSnapshot()
        do {
            try StateStore(path: app.config.stateFile).save(
                SavedState(version: SavedState.currentVersion, savedAt: app.clock.now(), instanceID: app.config.instanceID, rooms: rooms))
            app.logger.notice("saved rooms", metadata: ["rooms": "\(rooms.count)", "path": "\(app.config.stateFile)"])
        } catch {
            app.logger.error("could not save rooms", metadata: ["error": "\(error)", "path": "\(app.config.stateFile)"])
        }
        await app.directory.leaveFleet()
        let connected = app.metrics.connections > 0
        await app.directory.closeAllConnections()
        if connected { try? await Task.sleep(for: .milliseconds(300)) }  // let the close frames go out
    }
}
