import Foundation
import MetricsSchema
import JSONCore
import Logging
import RedisClient

/// All rooms of this instance and the lobby's subscribers. Rooms report their
/// summaries here; the lobby's room list and the server's gauges come from them.
public actor RoomDirectory {
    private var rooms: [String: Room] = [:]
    private var summaries: [String: RoomSummary] = [:]
    private var lobby: [UInt64: Connection] = [:]
    private var lobbyBroadcastPending = false
    private(set) var shuttingDown = false
    let config: ServerConfig
    let metrics: ServerMetrics
    let clock: WallClock
    let logger: Logger
    let fleet: Fleet?

    public struct Gauges: Sendable, Equatable {
        public var activeRooms = 0
        public var activeGames = 0
        /// Humans connected to a room.
        public var players = 0
        public var lobbyConnections = 0
    }

    public init(config: ServerConfig, metrics: ServerMetrics, clock: WallClock, logger: Logger) {
        self.config = config
        self.metrics = metrics
        self.clock = clock
        self.logger = logger
        fleet = config.redis.map {
            Fleet(redis: RedisClient(endpoint: $0), instanceID: config.instanceID, heartbeat: config.redisHeartbeat,
                  backupTTL: config.redisBackupTTL, metrics: metrics, logger: logger)
        }
    }

    private var environment: RoomEnvironment {
        RoomEnvironment(config: config, metrics: metrics, clock: clock, logger: logger, directory: self, fleet: fleet)
    }

    public func gauges() -> Gauges {
        var g = Gauges()
        g.activeRooms = summaries.count
        g.activeGames = summaries.values.filter(\.started).count
        g.players = summaries.values.reduce(0) { $0 + $1.connectedHumans }
        g.lobbyConnections = lobby.count
        return g
    }

    func room(_ id: String) -> Room? { rooms[id] }

    var isShuttingDown: Bool { shuttingDown }

    // MARK: - Lobby

    func createRoom(hostName: String) async throws(ProtocolError) -> JoinTicket {
        guard !shuttingDown else { throw .shuttingDown }
        let room = Room(id: RoomID.make(), env: environment)
        rooms[room.id] = room
        logger.info("room created", metadata: ["room": "\(room.id)"])
        let ticket = try await room.join(name: hostName)
        // Registered before `room_created` goes out: a join on any instance finds it from then on.
        if let fleet, let summary = await room.currentSummary {
            if (summaries[room.id]?.version ?? 0) < summary.version { summaries[room.id] = summary }
            let entry = listEntry(summary)
            published[room.id] = entry
            await fleet.publish([room.id: entry])
        }
        return ticket
    }

    func joinRoom(_ id: String, name: String) async throws(ProtocolError) -> JoinTicket {
        guard !shuttingDown else { throw .shuttingDown }
        return try await roomHereOrAdopted(id).join(name: name)
    }

    /// The room if this instance holds it. With a fleet, a room another instance
    /// holds is an error naming that instance, and a room whose instance died is
    /// adopted from its backup.
    func roomHereOrAdopted(_ id: String) async throws(ProtocolError) -> Room {
        guard RoomID.isPlausible(id) else { throw .roomNotFound }
        if let room = rooms[id] { return room }
        guard let fleet, !shuttingDown else { throw .roomNotFound }
        let lookup = await fleet.locate(id)
        if let room = rooms[id] { return room }  // adopted by a concurrent request meanwhile
        switch lookup {
        case .unknown:
            throw .roomNotFound
        case .elsewhere(let owner):
            metrics.update { $0.misroutedJoins += 1 }
            throw .roomOnOtherInstance(owner)
        case .adopted(let snapshot):
            let room = Room(snapshot: snapshot, env: environment)
            rooms[id] = room
            await room.resumeAfterRestore()
            // Owned here now, for every instance at once (not at the next heartbeat).
            if let summary = await room.currentSummary {
                let entry = listEntry(summary)
                published[id] = entry
                await fleet.publish([id: entry])
            }
            return room
        }
    }

    func addLobby(_ connection: Connection) async {
        lobby[connection.id] = connection
        connection.send("room_list_update", await roomList())
    }

    func removeLobby(_ connection: Connection) { lobby[connection.id] = nil }

    /// Joinable rooms: this instance's and, with a fleet, every other instance's.
    func roomList() async -> JSON {
        var listed = summaries.values.filter(\.joinable).map(listEntry)
        if let fleet {
            listed += await fleet.remoteRooms.values.map(\.entry).filter { $0["joinable"]?.bool == true }
        }
        listed.sort { ($0["room_id"]?.string ?? "") < ($1["room_id"]?.string ?? "") }
        return ["rooms": .array(listed), "timestamp": JSON(clock.now().timeIntervalSince1970)]
    }

    private func listEntry(_ summary: RoomSummary) -> JSON {
        [
            "room_id": .string(summary.id),
            "host_name": JSON(summary.hostName),
            "host_id": JSON(summary.hostID),
            "players": .array(summary.seats.map { seat in
                seat.map { ["name": .string($0.name), "player_id": .string($0.id), "is_bot": .bool($0.isBot)] } ?? .null
            }),
            "occupied_slots": JSON(summary.occupied),
            "total_slots": 4,
            "started": .bool(summary.started),
            "joinable": .bool(summary.joinable),
            "instance_id": .string(config.instanceID),
        ]
    }

    // MARK: - Fleet

    /// One heartbeat: this instance's rooms out, the other instances' rooms in.
    func exchangeWithFleet() async {
        guard let fleet, !shuttingDown else { return }
        let entries = Dictionary(uniqueKeysWithValues: summaries.values.map { ($0.id, listEntry($0)) })
        if await fleet.beat(localRooms: entries) { scheduleLobbyBroadcast() }
    }

    /// Saved rooms, less those another instance adopted while this one was down.
    func notAdoptedElsewhere(_ snapshots: [RoomSnapshot]) async -> [RoomSnapshot] {
        guard let fleet else { return snapshots }
        var kept: [RoomSnapshot] = []
        for snapshot in snapshots {
            if let claimant = await fleet.claimant(snapshot.id), claimant != config.instanceID {
                logger.notice("not restoring a room another instance took over", metadata: ["room": "\(snapshot.id)", "instance": "\(claimant)"])
            } else {
                kept.append(snapshot)
            }
        }
        return kept
    }

    /// At a clean shutdown: the instance is gone at once, not after its heartbeat expires.
    func leaveFleet() async { await fleet?.leave() }

    /// The fleet section of the detailed health; nil when running alone.
    func fleetStatus() async -> JSON? { await fleet?.status }

    // MARK: - Room reports

    func update(_ summary: RoomSummary) {
        guard rooms[summary.id] != nil else { return }
        if let old = summaries[summary.id], old.version > summary.version { return }
        let wasListed = summaries[summary.id]?.joinable ?? false
        summaries[summary.id] = summary
        if wasListed || summary.joinable { scheduleLobbyBroadcast() }
        if fleet != nil { scheduleFleetPublish() }
    }

    /// Each room's lobby entry as last registered in Redis.
    private var published: [String: JSON] = [:]
    private var fleetPublishPending = false

    /// Coalesces room changes into one registration per 100 ms (only of the entries that changed).
    private func scheduleFleetPublish() {
        guard !fleetPublishPending else { return }
        fleetPublishPending = true
        Task {
            try? await Task.sleep(for: .milliseconds(100))
            await self.publishChangedRooms()
        }
    }

    private func publishChangedRooms() async {
        fleetPublishPending = false
        guard let fleet, !shuttingDown else { return }
        var changed: [String: JSON] = [:]
        for summary in summaries.values {
            let entry = listEntry(summary)
            if published[summary.id] != entry { changed[summary.id] = entry }
        }
        for (id, entry) in changed { published[id] = entry }
        await fleet.publish(changed)
    }

    /// Every 250 ms with a fleet: the other instances' rooms, read again when one of them changed.
    func watchFleet() async {
        guard let fleet, !shuttingDown else { return }
        if await fleet.watch() { scheduleLobbyBroadcast() }
    }

    func roomClosed(_ id: String) {
        rooms[id] = nil
        published[id] = nil
        if let fleet { Task { await fleet.roomClosed(id) } }
        if summaries.removeValue(forKey: id) != nil { scheduleLobbyBroadcast() }
        logger.info("room closed", metadata: ["room": "\(id)"])
    }

    /// Coalesces bursts of room changes into one lobby update per 100 ms.
    private func scheduleLobbyBroadcast() {
        guard !lobbyBroadcastPending, !lobby.isEmpty else { return }
        lobbyBroadcastPending = true
        Task {
            try? await Task.sleep(for: .milliseconds(100))
            await self.broadcastLobby()
        }
    }

    private func broadcastLobby() async {
        lobbyBroadcastPending = false
        let text = messageText("room_list_update", await roomList())
        for connection in lobby.values { connection.sendText(text) }
    }

    // MARK: - Cleanup

    /// Removes rooms that have had no connected human for the idle timeout.
    func sweepIdle() async {
        let cutoff = clock.now().addingTimeInterval(-config.roomIdleTimeout.seconds)
        for summary in summaries.values {
            guard let idle = summary.idleSince, idle < cutoff, let room = rooms[summary.id] else { continue }
            logger.info("removing idle room", metadata: ["room": "\(summary.id)"])
            await room.close(reason: "idle", message: "Room closed - nobody connected for a while")
        }
    }

    // MARK: - Shutdown and restore

    /// A live instance to hand this one's games to at a drain (nil: alone, or no Redis).
    func handoverPeer() async -> String? {
        guard let fleet else { return nil }
        return await fleet.liveInstances.filter { $0 != config.instanceID }.sorted().first
    }

    /// A planned drain with a live peer: play stops, every room's latest state is written to Redis and this
    /// instance leaves the fleet, so the peer adopts each room as soon as its players come back; then the
    /// players are told to reconnect at once, to the peer (its cookie). Returns the rooms handed over.
    func handOver(to peer: String, message: String) async -> Int {
        shuttingDown = true
        guard let fleet else { return 0 }
        var snapshots: [RoomSnapshot] = []
        for room in rooms.values {
            await room.freeze()
            if await !room.isClosed { snapshots.append(await room.snapshot()) }
        }
        for snapshot in snapshots { await fleet.backup(snapshot, final: true) }
        await fleet.flushNow()
        await fleet.leave()
        let data: JSON = ["message": .string(message), "reconnect_delay": 0, "instance_id": .string(peer)]
        for connection in lobby.values { connection.send("server_shutdown", data) }
        for room in rooms.values { await room.broadcastAll("server_shutdown", data) }
        metrics.update { $0.roomsHandedOver += snapshots.count }
        return snapshots.count
    }

    func beginShutdown(message: String, reconnectDelay: Int) async {
        shuttingDown = true
        let data: JSON = ["message": .string(message), "reconnect_delay": JSON(reconnectDelay)]
        for connection in lobby.values { connection.send("server_shutdown", data) }
        for room in rooms.values { await room.broadcastAll("server_shutdown", data) }
    }

    /// Stops all play and returns every room's state.
    func freezeAndSnapshot() async -> [RoomSnapshot] {
        var snapshots: [RoomSnapshot] = []
        for room in rooms.values {
            await room.freeze()
            if await !room.isClosed { snapshots.append(await room.snapshot()) }
        }
        return snapshots.sorted { $0.id < $1.id }
    }

    func closeAllConnections() async {
        for connection in lobby.values { connection.close(.goingAway, reason: "server restarting") }
        for room in rooms.values { await room.closeConnections() }
    }

    func restore(_ snapshots: [RoomSnapshot]) async {
        for snapshot in snapshots {
            let room = Room(snapshot: snapshot, env: environment)
            rooms[snapshot.id] = room
            await room.resumeAfterRestore()
        }
    }
}
