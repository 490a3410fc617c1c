import Foundation
import GameEngine
import JSONCore
import Testing
import TestSupport
@testable import GameServer

/// The game backup's encoder against Foundation's: the same JSON for snapshots of games at every point, read back
/// by the `JSONDecoder` that restores backups, and the same for the corners of `Codable` snapshots do not use today.
@Suite struct BackupEncodingTests {
    func foundationJSON<T: Encodable>(_ value: T) throws -> Data {
        let encoder = JSONEncoder()
        encoder.dateEncodingStrategy = .iso8601
        return try encoder.encode(value)
    }

    func decoder() -> JSONDecoder {
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .iso8601
        return decoder
    }

    @Test func snapshotsOfGamesAtEveryPointEncodeAsFoundationDoes() async throws {
        let turn = await CPUBoundTurn.take()
        defer { turn.end() }
        var compared = 0
        for seed in UInt64(1)...24 {
            var game = Game(seed: seed)
            var bots: [any Bot] = [StrategicBot(), RandomBot(seed: seed), StrategicBot(), RandomBot(seed: ~seed)]
            var actions = 0
            // Every 11th state of the game, its end included.
            while true {
                if actions % 11 == 0 || game.isOver {
                    let seats: [SeatState?] = [
                        SeatState(name: "Ann \"<&>\" \u{2028}ü", kind: .human, token: "t\(seed)",
                                  disconnectedSince: seed % 2 == 0 ? Date(timeIntervalSince1970: 1_790_000_000.75 + Double(seed)) : nil),
                        SeatState(name: "Bot 2", kind: .bot),
                        seed % 3 == 0 ? nil : SeatState(name: "Bea", kind: .human, standsIn: true),
                        SeatState(name: "Bot 4", kind: .bot),
                    ]
                    let snapshot = RoomSnapshot(id: "room\(seed)", seats: seats, hostSlot: seed % 4 == 0 ? nil : 0,
                                                game: actions == 0 && seed % 5 == 0 ? nil : game, sequence: actions,
                                                createdAt: Date(timeIntervalSince1970: 1_790_000_000.25))
                    let ours = try StreamingJSONEncoder().encode(snapshot)
                    let theirs = try foundationJSON(snapshot)
                    #expect(try JSONParser.parse(bytes: ours) == JSONParser.parse(bytes: theirs), "seed \(seed), action \(actions)")
                    let back = try decoder().decode(RoomSnapshot.self, from: Data(ours))
                    let expected = try decoder().decode(RoomSnapshot.self, from: theirs)
                    #expect(back.game == expected.game && back.seats == expected.seats && back.createdAt == expected.createdAt
                            && back.hostSlot == expected.hostSlot && back.sequence == expected.sequence && back.id == expected.id)
                    compared += 1
                }
                guard let seat = game.currentSeat else { break }
                _ = try game.apply(bots[seat].action(for: game.view(for: seat)))
                actions += 1
            }
        }
        #expect(compared > 150)
    }

    struct Nothing: Encodable { func encode(to encoder: any Encoder) throws {} }

    struct Corners: Encodable {
        enum Shape: Encodable { case point, circle(radius: Double), pair(Int, String?) }
        var nothing = Nothing()
        var optionals: [Int?] = [1, nil, 3]
        var nested: [[String]] = [[], ["a"], ["b", "c"]]
        var shapes: [Shape] = [.point, .circle(radius: 2.5), .pair(7, nil)]
        var big: UInt64 = .max
        var small: Int8 = -128
        var absent: String? = nil
        var dates: [Date] = [Date(timeIntervalSince1970: 0), Date(timeIntervalSince1970: 1_790_000_000.999)]
        var byKey: [String: Int] = ["x": 1]
        var byNumber: [Int: Bool] = [2: true]
    }

    struct WithSuper: Encodable {
        enum Keys: String, CodingKey { case own, list }
        func encode(to encoder: any Encoder) throws {
            var container = encoder.container(keyedBy: Keys.self)
            try container.encode(1, forKey: .own)
            try Corners().encode(to: container.superEncoder())
            var list = container.nestedUnkeyedContainer(forKey: .list)
            try list.encode(true)
            try Nothing().encode(to: list.superEncoder())
            try list.encode(false)
        }
    }

    @Test func cornersOfCodableEncodeAsFoundationDoes() throws {
        for value in [AnyEncodable(Corners()), AnyEncodable(WithSuper()), AnyEncodable([Corners(), Corners()]),
                      AnyEncodable(Optional<Int>.none), AnyEncodable("top")] {
            let ours = try StreamingJSONEncoder().encode(value)
            let theirs = try foundationJSON(value)
            #expect(try JSONParser.parse(bytes: ours) == JSONParser.parse(bytes: theirs),
                    "\(String(decoding: ours, as: UTF8.self)) against \(String(decoding: theirs, as: UTF8.self))")
        }
    }

    /// Foundation allows it; a writer that streams cannot go back, and says so instead of writing wrong JSON or crashing.
    @Test func writingToAContainerAfterItsParentMovedOnIsAnError() {
        struct Interleaved: Encodable {
            enum Keys: String, CodingKey { case a, b }
            func encode(to encoder: any Encoder) throws {
                var outer = encoder.container(keyedBy: Keys.self)
                var inner = outer.nestedUnkeyedContainer(forKey: .a)
                try inner.encode(1)
                try outer.encode(2, forKey: .b)
                try inner.encode(3)
            }
        }
        #expect(throws: EncodingError.self) { try StreamingJSONEncoder().encode(Interleaved()) }
        #expect(throws: EncodingError.self) { try StreamingJSONEncoder().encode([Interleaved()]) }
    }

    @Test func aTopLevelValueThatEncodesNothingIsAnErrorAsInFoundation() {
        #expect(throws: EncodingError.self) { try foundationJSON(Nothing()) }
        #expect(throws: EncodingError.self) { try StreamingJSONEncoder().encode(Nothing()) }
    }

    @Test func aNumberJSONCannotHoldIsAnErrorNamingWhereItIs() {
        struct Bad: Encodable { var values: [Double] = [1, .infinity] }
        #expect {
            _ = try StreamingJSONEncoder().encode(["k": Bad()])
        } throws: { error in
            guard case EncodingError.invalidValue(_, let context) = error else { return false }
            return context.codingPath.map(\.stringValue) == ["k", "values", "Index 1"]
        }
    }
}

struct AnyEncodable: Encodable {
    let value: any Encodable
    init(_ value: any Encodable) { self.value = value }
    func encode(to encoder: any Encoder) throws { try value.encode(to: encoder) }
}
