import Foundation
import GameEngine

/// The rooms and games saved at shutdown so a restart keeps them.
struct SavedState: Codable {
    static let currentVersion = 1
    var version: Int
    var savedAt: Date
    var instanceID: String
    var rooms: [RoomSnapshot]
}

enum StateStoreError: Error, CustomStringConvertible {
    case unreadable(String, String)
    case unsupportedVersion(Int)

    var description: String {
        switch self {
        case .unreadable(let path, let reason): return "state file \(path) is unreadable: \(reason)"
        case .unsupportedVersion(let v): return "state file version \(v) is not supported"
        }
    }
}

/// Reads and writes the state file. Writes go to a temporary file that is
/// synced and renamed over the old one, so a crash never leaves half a file.
struct StateStore {
    let path: String

    func save(_ state: SavedState) throws {
        let url = URL(fileURLWithPath: path)
        try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
        let data = Data(try StreamingJSONEncoder().encode(state))
        let temporary = path + ".tmp"
        guard FileManager.default.createFile(atPath: temporary, contents: data) else {
            throw CocoaError(.fileWriteUnknown, userInfo: [NSFilePathErrorKey: temporary])
        }
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: temporary))
        try handle.synchronize()
        try handle.close()
        if rename(temporary, path) != 0 { throw POSIXError(POSIXErrorCode(rawValue: errno) ?? .EIO) }
    }

    /// Loads the saved state and moves the file aside, so a crash later does not
    /// restore this old state a second time. Returns nil when there is no file.
    func loadAndRetire() throws -> SavedState? {
        guard FileManager.default.fileExists(atPath: path) else { return nil }
        let data: Data
        do { data = try Data(contentsOf: URL(fileURLWithPath: path)) } catch {
            throw StateStoreError.unreadable(path, "\(error)")
        }
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .iso8601
        let state: SavedState
        do { state = try decoder.decode(SavedState.self, from: data) } catch {
            throw StateStoreError.unreadable(path, "\(error)")
        }
        guard state.version == SavedState.currentVersion else { throw StateStoreError.unsupportedVersion(state.version) }
        _ = rename(path, path + ".restored")
        return state
    }
}
