/// The names of Chinese-chess pieces, strongest first.
public enum PieceName: String, CaseIterable, Codable, Sendable {
    case general = "GENERAL"
    case advisor = "ADVISOR"
    case elephant = "ELEPHANT"
    case chariot = "CHARIOT"
    case horse = "HORSE"
    case cannon = "CANNON"
    case soldier = "SOLDIER"

    /// Copies of this name per colour in the 32-piece deck.
    public var copiesPerColor: Int {
        switch self {
        case .general: return 1
        case .soldier: return 5
        default: return 2
        }
    }
}

public enum PieceColor: String, CaseIterable, Codable, Sendable {
    case red = "RED"
    case black = "BLACK"
}

/// One piece. Every name/colour pair has its own point value (1...14), so the
/// points identify the kind and a piece is stored as a single byte.
public struct Piece: Hashable, Comparable, Sendable, CustomStringConvertible {
    public let points: UInt8

    public init(_ name: PieceName, _ color: PieceColor) {
        let redPoints: Int
        switch name {
        case .general: redPoints = 14
        case .advisor: redPoints = 12
        case .elephant: redPoints = 10
        case .chariot: redPoints = 8
        case .horse: redPoints = 6
        case .cannon: redPoints = 4
        case .soldier: redPoints = 2
        }
        points = UInt8(color == .red ? redPoints : redPoints - 1)
    }

    public init?(points: Int) {
        guard (1...14).contains(points) else { return nil }
        self.points = UInt8(points)
    }

    /// Parses `NAME_COLOUR`, e.g. `GENERAL_RED`.
    public init?(kind: String) {
        guard let sep = kind.lastIndex(of: "_"),
              let name = PieceName(rawValue: String(kind[..<sep])),
              let color = PieceColor(rawValue: String(kind[kind.index(after: sep)...]))
        else { return nil }
        self.init(name, color)
    }

    public var value: Int { Int(points) }
    public var color: PieceColor { points % 2 == 0 ? .red : .black }
    public var name: PieceName { PieceName.allCases[(14 - Int(points)) / 2] }
    /// 0...13, for counting arrays.
    @inlinable public var index: Int { Int(points) - 1 }
    public var kind: String { "\(name.rawValue)_\(color.rawValue)" }
    public var description: String { kind }

    public static func < (a: Piece, b: Piece) -> Bool { a.points < b.points }

    /// The 32 pieces of a full deck, strongest first.
    public static let deck: [Piece] = PieceName.allCases.flatMap { name in
        PieceColor.allCases.flatMap { color in
            Array(repeating: Piece(name, color), count: name.copiesPerColor)
        }
    }
}

extension Piece: Codable {
    public init(from decoder: Decoder) throws {
        let container = try decoder.singleValueContainer()
        let kind = try container.decode(String.self)
        guard let piece = Piece(kind: kind) else {
            throw DecodingError.dataCorruptedError(in: container, debugDescription: "unknown piece kind \(kind)")
        }
        self = piece
    }

    public func encode(to encoder: Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(kind)
    }
}

/// Counts of each of the 14 kinds in a set of pieces, packed four bits a kind
/// into one word so the bots' inner loops allocate nothing.
public struct PieceCounts: Equatable, Hashable, Sendable {
    public private(set) var bits: UInt64 = 0
    private static let highBits: UInt64 = 0x0088_8888_8888_8888

    public init() {}
    public init<S: Sequence>(_ pieces: S) where S.Element == Piece {
        for p in pieces { add(p) }
    }
    public init(_ piece: Piece, _ n: Int) { add(piece, n) }

    /// The count of the kind with `Piece.index` `index`.
    @inlinable public func count(at index: Int) -> Int { Int((bits >> (UInt64(index) * 4)) & 0xF) }
    public subscript(_ piece: Piece) -> Int { count(at: piece.index) }
    public subscript(_ name: PieceName, _ color: PieceColor) -> Int { self[Piece(name, color)] }
    public var total: Int { (0..<14).reduce(0) { $0 + count(at: $1) } }

    public mutating func add(_ piece: Piece, _ n: Int = 1) { bits &+= UInt64(n) << (UInt64(piece.index) * 4) }
    public mutating func remove(_ piece: Piece, _ n: Int = 1) {
        precondition(self[piece] >= n, "removing a piece that is not counted")
        bits &-= UInt64(n) << (UInt64(piece.index) * 4)
    }

    public mutating func subtract(_ other: PieceCounts) {
        precondition(contains(other), "subtracting pieces that are not counted")
        bits &-= other.bits
    }

    /// True when every piece of `other` is available here (multiset inclusion).
    /// No kind has more than 5 copies, so a nibble never reaches 8 and a
    /// subtraction under the high bits borrows exactly where a count falls short.
    public func contains(_ other: PieceCounts) -> Bool {
        ((bits | PieceCounts.highBits) &- other.bits) & PieceCounts.highBits == PieceCounts.highBits
    }
}
