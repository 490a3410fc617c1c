import Foundation
import JSONCore
import Logging
import GameEngine
import RedisClient

/// What instances share through Redis (`--redis-url`): which instances are alive,
/// which rooms each holds (for every lobby), and a backup of each game at its turn
/// boundaries so another instance can take it over when its own dies.
///
/// Keys (every one expires, so a dead instance's entries disappear by themselves):
/// - `liaptui:instance:<id>`  the instance's heartbeat, TTL 3 × heartbeat
/// - `liaptui:room:<room>`    the room's lobby entry with its owner, TTL 3 × heartbeat
/// - `liaptui:game:<room>`    the room and game snapshot, TTL `--redis-backup-ttl`
/// - `liaptui:claim:<room>`   set once (NX) by the instance that adopts an orphaned room
/// - `liaptui:rooms:version`  incremented whenever an instance adds, changes or removes a room; every
///                            instance watches it (every 250 ms) and reads the rooms again when it moves
///
/// Redis is an aid, never a dependency: every failure is logged and counted, and
/// the instance goes on serving its own rooms.
actor Fleet {
    static let prefix = "liaptui:"

    /// A room on another instance, as its lobby entry says.
    struct RemoteRoom: Sendable {
        let id: String
        let instanceID: String
        let entry: JSON
    }

    /// Why a room cannot be served here.
    enum Lookup: Sendable {
        case adopted(RoomSnapshot)
        case elsewhere(instanceID: String)
        case unknown
    }

    let redis: RedisClient
    let instanceID: String
    let heartbeat: Duration
    let backupTTL: Duration
    let metrics: ServerMetrics
    let logger: Logger
    private let startedAt = Date()
    private(set) var remoteRooms: [String: RemoteRoom] = [:]
    private(set) var liveInstances: Set<String> = []
    private var reachable = true
    private var pendingBackups: [String: (snapshot: RoomSnapshot, at: Date)] = [:]
    /// The newest state queued per room: backups are handed over by separate tasks, which may arrive out of order.
    private var newestSequence: [String: Int] = [:]
    /// Rooms closed in the last minute, whose stragglers are dropped.
    private var recentlyClosed: [String: ContinuousClock.Instant] = [:]
    private var flushing = false

    init(redis: RedisClient, instanceID: String, heartbeat: Duration, backupTTL: Duration, metrics: ServerMetrics, logger: Logger) {
        self.redis = redis
        self.instanceID = instanceID
        self.heartbeat = heartbeat
        self.backupTTL = backupTTL
        self.metrics = metrics
        self.logger = logger
    }

    /// The `fleet` section of the detailed health.
    var status: JSON {
        [
            "redis": .string(reachable ? "reachable" : "unreachable"),
            "instances": JSON(liveInstances.sorted()),
            "other_instances_rooms": JSON(remoteRooms.count),
        ]
    }
    private var entryTTL: String { String(Int(heartbeat.seconds * 3000)) }

    // MARK: - Heartbeat

    /// Publishes this instance and its rooms, and reads everyone else's. Returns
    /// whether the other instances' rooms changed (the lobby should be told).
    func beat(localRooms: [String: JSON]) async -> Bool {
        let now = Date().timeIntervalSince1970
        var commands: [[String]] = [[
            "SET", Self.prefix + "instance:" + instanceID,
            JSON.object(["instance_id": .string(instanceID), "rooms": JSON(localRooms.count), "updated_at": JSON(now),
                         "started_at": JSON(startedAt.timeIntervalSince1970)]).text,
            "PX", entryTTL,
        ]]
        commands += roomCommands(localRooms, now: now)
        do {
            try check(try await redis.pipeline(commands))
            return try await readRooms()
        } catch {
            failed(error, doing: "heartbeat")
            return false
        }
    }

    private func roomCommands(_ rooms: [String: JSON], now: Double) -> [[String]] {
        rooms.sorted(by: { $0.key < $1.key }).map { id, entry in
            var entry = entry
            entry["updated_at"] = JSON(now)
            return ["SET", Self.prefix + "room:" + id, entry.text, "PX", entryTTL]
        }
    }

    /// Registers rooms at once (a new room, a changed one), and tells the other instances to read the
    /// rooms again: they watch `liaptui:rooms:version`.
    func publish(_ rooms: [String: JSON]) async {
        guard !rooms.isEmpty else { return }
        do {
            try check(try await redis.pipeline(roomCommands(rooms, now: Date().timeIntervalSince1970) + [["INCR", Self.versionKey]]))
            succeeded()
        } catch {
            failed(error, doing: "publish rooms")
        }
    }

    static let versionKey = prefix + "rooms:version"
    private var seenVersion: String?

    /// Reads every instance's rooms again when one of them changed its own since the last look
    /// (one GET when nothing changed). Returns whether the other instances' rooms changed.
    func watch() async -> Bool {
        do {
            let version = try await redis.send("GET", Self.versionKey).string
            guard version != seenVersion else { return false }
            seenVersion = version
            return try await readRooms()
        } catch {
            failed(error, doing: "watch rooms")
            return false
        }
    }

    private func readRooms() async throws -> Bool {
        do {
            let instances = try await keys(matching: Self.prefix + "instance:*")
            let roomKeys = try await keys(matching: Self.prefix + "room:*")
            var rooms: [String: RemoteRoom] = [:]
            if !roomKeys.isEmpty {
                let values = try await redis.send(["MGET"] + roomKeys).array ?? []
                for value in values {
                    guard let text = value.string, let entry = try? JSONParser.parse(text),
                          let id = entry["room_id"]?.string, let owner = entry["instance_id"]?.string, owner != instanceID else { continue }
                    rooms[id] = RemoteRoom(id: id, instanceID: owner, entry: entry)
                }
            }
            succeeded()
            liveInstances = Set(instances.map { String($0.dropFirst((Self.prefix + "instance:").count)) })
            func content(_ room: RemoteRoom) -> JSON {
                var entry = room.entry
                entry["updated_at"] = nil
                return entry
            }
            let changed = rooms.mapValues(content) != remoteRooms.mapValues(content)
            remoteRooms = rooms
            return changed
        }
    }

    /// SCAN, bounded: at most 100 round trips of up to 1,000 keys.
    private func keys(matching pattern: String) async throws -> [String] {
        var cursor = "0"
        var found: [String] = []
        for _ in 0..<100 {
            let reply = try await redis.send("SCAN", cursor, "MATCH", pattern, "COUNT", "1000").array ?? []
            guard reply.count == 2, let next = reply[0].string else { throw RedisError.protocolViolation("SCAN reply") }
            found += (reply[1].array ?? []).compactMap(\.string)
            cursor = next
            if cursor == "0" { break }
        }
        return Array(Set(found)).sorted()
    }

    /// Removes this instance's heartbeat at a clean shutdown, so others may adopt its games at once.
    func leave() async {
        do { try await redis.send("DEL", Self.prefix + "instance:" + instanceID) } catch { failed(error, doing: "leave") }
    }

    // MARK: - Rooms

    func roomClosed(_ id: String) async {
        pendingBackups[id] = nil
        newestSequence[id] = nil
        let now = ContinuousClock.now
        recentlyClosed[id] = now
        recentlyClosed = recentlyClosed.filter { now - $0.value < .seconds(60) }
        do {
            try check(try await redis.pipeline([["DEL", Self.prefix + "room:" + id, Self.prefix + "game:" + id], ["INCR", Self.versionKey]]))
        } catch {
            failed(error, doing: "room closed")
        }
    }

    /// Queues the room's state to be written; the latest state wins, written in the background. A move
    /// made while the previous write is in flight replaces the one waiting: encoded once, at the write.
    /// `final`: the room's last state at a drain, written even when this sequence was written before (a room
    /// that never started has no backup yet).
    func backup(_ snapshot: RoomSnapshot, final: Bool = false) {
        guard recentlyClosed[snapshot.id] == nil else { return }  // a late backup must not bring a closed room back
        if !final, let newest = newestSequence[snapshot.id], newest >= snapshot.sequence { return }
        newestSequence[snapshot.id] = snapshot.sequence
        pendingBackups[snapshot.id] = (snapshot, Date())
        guard !flushing else { return }
        flushing = true
        Task { await self.flushBackups() }
    }

    private func record(_ snapshot: RoomSnapshot, at: Date) -> String? {
        guard let room = try? StreamingJSONEncoder().encode(snapshot) else { return nil }
        var record = Array(#"{"instance_id":"#.utf8)
        JSON.writeString(instanceID, to: &record)
        record.append(contentsOf: #","saved_at":"#.utf8)
        record.append(contentsOf: JSON.format(at.timeIntervalSince1970).utf8)
        record.append(contentsOf: #","room":"#.utf8)
        record.append(contentsOf: room)
        record.append(UInt8(ascii: "}"))
        return String(decoding: record, as: UTF8.self)
    }

    /// Writes what is queued now and waits for it (a drain hands the games over this way).
    func flushNow() async {
        while flushing { try? await Task.sleep(for: .milliseconds(5)) }
        flushing = true
        await flushBackups()
    }

    private func flushBackups() async {
        while !pendingBackups.isEmpty {
            let batch = pendingBackups
            pendingBackups = [:]
            let ttl = String(Int(backupTTL.seconds * 1000))
            let commands = batch.compactMap { id, pending in
                record(pending.snapshot, at: pending.at).map { ["SET", Self.prefix + "game:" + id, $0, "PX", ttl] }
            }
            do {
                try check(try await redis.pipeline(commands))
                metrics.update { $0.redisBackups += commands.count }
                succeeded()
            } catch {
                failed(error, doing: "game backup")
            }
        }
        flushing = false
    }

    /// Where a room this instance does not hold is. A room whose owner is gone is
    /// adopted: the claim (SET NX) makes sure only one instance restores it.
    func locate(_ roomID: String) async -> Lookup {
        guard RoomID.isPlausible(roomID) else { return .unknown }
        do {
            let replies = try await redis.pipeline([["GET", Self.prefix + "game:" + roomID], ["GET", Self.prefix + "room:" + roomID]])
            try check(replies)
            succeeded()
            let entryOwner = replies[1].string.flatMap { try? JSONParser.parse($0) }?["instance_id"]?.string
            guard let text = replies[0].string else {
                // No game backup: a room that never started lives only on its owner.
                if let owner = entryOwner, owner != instanceID { return .elsewhere(instanceID: owner) }
                return .unknown
            }
            let decoder = JSONDecoder()
            decoder.dateDecodingStrategy = .iso8601
            struct Record: Decodable { let instance_id: String; let saved_at: Double?; let room: RoomSnapshot }
            let record = try decoder.decode(Record.self, from: Data(text.utf8))
            let owner = entryOwner ?? record.instance_id
            if owner != instanceID, try await redis.send("EXISTS", Self.prefix + "instance:" + owner).int == 1 {
                return .elsewhere(instanceID: owner)
            }
            let claim = try await redis.send("SET", Self.prefix + "claim:" + roomID, instanceID, "NX", "PX", String(Int(heartbeat.seconds * 6000)))
            guard claim == .simpleString("OK") else {
                let claimant = try await redis.send("GET", Self.prefix + "claim:" + roomID).string
                if let claimant, claimant != instanceID { return .elsewhere(instanceID: claimant) }
                return .adopted(record.room)
            }
            logger.notice("adopting a room whose instance is gone", metadata: ["room": "\(roomID)", "from": "\(owner)"])
            metrics.tookOver(afterMS: max(0, (Date().timeIntervalSince1970 - (record.saved_at ?? Date().timeIntervalSince1970)) * 1000))
            return .adopted(record.room)
        } catch {
            failed(error, doing: "locate room")
            return .unknown
        }
    }

    /// The instance that adopted this room, if one did.
    func claimant(_ roomID: String) async -> String? {
        do {
            let claimant = try await redis.send("GET", Self.prefix + "claim:" + roomID).string
            succeeded()
            return claimant
        } catch {
            failed(error, doing: "read claim")
            return nil
        }
    }

    // MARK: - Failures

    private func check(_ replies: [RESPValue]) throws {
        for case .error(let message) in replies { throw RedisError.server(message) }
    }

    private func succeeded() {
        guard !reachable else { return }
        reachable = true
        logger.notice("redis reachable again", metadata: ["redis": "\(redis.endpoint)"])
    }

    private func failed(_ error: any Error, doing what: String) {
        metrics.update { $0.redisErrors += 1 }
        metrics.error()
        if reachable {
            logger.error("redis unavailable; serving this instance's rooms only", metadata: [
                "redis": "\(redis.endpoint)", "during": "\(what)", "error": "\(error)",
            ])
        } else {
            logger.debug("redis still unavailable", metadata: ["during": "\(what)", "error": "\(error)"])
        }
        reachable = false
    }
}

extension GameEvent {
    /// Where a game is backed up: the end of a turn, a round or a phase, and the game's end.
    var isBoundary: Bool {
        switch self {
        case .turnCompleted, .roundScored, .phaseChanged, .gameEnded: return true
        default: return false
        }
    }
}
