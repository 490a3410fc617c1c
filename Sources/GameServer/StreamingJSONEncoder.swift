import Foundation
import JSONCore
import MetricsSchema

/// Encodable values to compact JSON, written byte by byte while the value encodes itself: the game backups in
/// Redis and the state file a restart reads.
///
/// A game backup is encoded after every move (docs/PERFORMANCE.md, "Redis"), and Foundation's `JSONEncoder`
/// was 39 % of the server's CPU doing it: it builds a tree of boxed values first, and looks every value up by
/// dynamic casts. This writes straight into one byte array. What `JSONDecoder` with `.iso8601` dates reads
/// back is what `JSONEncoder` with `.iso8601` wrote: dates as `2026-12-06T22:40:00Z` (whole seconds, UTC), nil
/// optionals left out, enums with associated values as Swift synthesises them, a value that encodes nothing as
/// `{}`, non-finite floats an error. Keys come in the order the value encodes them (not sorted). `Data` is not
/// special-cased (JSONEncoder writes it as base64): the snapshots this encodes hold none. A hand-written
/// `encode(to:)` that writes to a container after its parent has moved on (Foundation allows it) makes this throw.
struct StreamingJSONEncoder {
    func encode<T: Encodable>(_ value: T) throws -> [UInt8] {
        let sink = JSONSink()
        try sink.encodeTop(value)
        sink.closeAll()
        if let misuse = sink.misuse { throw EncodingError.invalidValue(value, .init(codingPath: [], debugDescription: misuse)) }
        return sink.bytes
    }
}

/// The coding path, linked from the innermost key outwards; built only for errors.
final class CodingPathNode {
    let key: any CodingKey
    let parent: CodingPathNode?
    init(_ key: any CodingKey, parent: CodingPathNode?) { self.key = key; self.parent = parent }

    static func path(_ node: CodingPathNode?) -> [any CodingKey] {
        var keys: [any CodingKey] = []
        var node = node
        while let n = node { keys.append(n.key); node = n.parent }
        return keys.reversed()
    }
}

struct IndexKey: CodingKey {
    let intValue: Int?
    var stringValue: String { "Index \(intValue ?? 0)" }
    init(intValue: Int) { self.intValue = intValue }
    init?(stringValue: String) { nil }
}

/// The output and the containers still open in it, innermost last. A container stays open until its parent writes
/// its next element or closes: synthesised `encode(to:)` never goes back to a container once it has moved on. A
/// hand-written one that does (writes to a container after its parent went on) makes the encoding throw.
final class JSONSink {
    private struct Open {
        let isObject: Bool
        let id: Int
        var count = 0
    }

    private(set) var bytes: [UInt8] = []
    private var open: [Open] = []
    private var nextID = 0
    /// Why the output is not what the value asked for (a container used after it was closed).
    private(set) var misuse: String?
    /// A key (or an array slot) was written and its value has not begun: a value that writes nothing is `{}`.
    private var awaitingValue = false

    init() { bytes.reserveCapacity(4096) }

    /// Closes the containers nested deeper than `level` (level n is the container at `open[n - 1]`).
    func close(deeperThan level: Int) {
        fillAwaitedValue()
        while open.count > level { bytes.append(open.removeLast().isObject ? UInt8(ascii: "}") : UInt8(ascii: "]")) }
    }

    func closeAll() { close(deeperThan: 0) }

    private func fillAwaitedValue() {
        guard awaitingValue else { return }
        awaitingValue = false
        bytes.append(contentsOf: "{}".utf8)
    }

    /// Starts the next element of the container at `level`: closes what an earlier element left open, then the comma
    /// and, in an object, the key. Returns the element's index.
    @discardableResult
    func beginElement(level: Int, id: Int, key: String?) -> Int {
        guard level <= open.count, open[level - 1].id == id else {
            misuse = misuse ?? "a container was written to after the value holding it had moved on"
            return 0
        }
        close(deeperThan: level)
        let index = open[level - 1].count
        if index > 0 { bytes.append(UInt8(ascii: ",")) }
        open[level - 1].count += 1
        if let key {
            JSON.writeString(key, to: &bytes)
            bytes.append(UInt8(ascii: ":"))
        }
        awaitingValue = true
        return index
    }

    func count(level: Int, id: Int) -> Int { level <= open.count && open[level - 1].id == id ? open[level - 1].count : 0 }

    /// Opens a container as the value at `level`, or finds the one that value already opened
    /// (`container(keyedBy:)` may be asked for twice by one value).
    /// Returns the container's identity, which its writes are checked against.
    func openContainer(level: Int, isObject: Bool) -> Int {
        awaitingValue = false
        if open.count == level + 1 { return open[level].id }
        close(deeperThan: level)
        nextID += 1
        open.append(Open(isObject: isObject, id: nextID))
        bytes.append(isObject ? UInt8(ascii: "{") : UInt8(ascii: "["))
        return nextID
    }

    // MARK: values

    func writeNull() { awaitingValue = false; bytes.append(contentsOf: "null".utf8) }
    func write(_ value: Bool) { awaitingValue = false; bytes.append(contentsOf: (value ? "true" : "false").utf8) }
    func write(_ value: String) { awaitingValue = false; JSON.writeString(value, to: &bytes) }
    func write<I: BinaryInteger>(integer value: I) { awaitingValue = false; bytes.append(contentsOf: String(value).utf8) }

    func write(_ value: Double, path: @autoclosure () -> [any CodingKey]) throws {
        guard value.isFinite else {
            throw EncodingError.invalidValue(value, .init(codingPath: path(), debugDescription: "\(value) is not a JSON number"))
        }
        awaitingValue = false
        bytes.append(contentsOf: JSON.format(value).utf8)
    }

    func write(_ date: Date) {
        let c = RFC3339.utcComponents(date)
        func two(_ n: Int) { bytes.append(UInt8(ascii: "0") + UInt8(n / 10)); bytes.append(UInt8(ascii: "0") + UInt8(n % 10)) }
        awaitingValue = false
        bytes.append(UInt8(ascii: "\""))
        if (0...9999).contains(c.year) { two(c.year / 100); two(c.year % 100) } else { bytes.append(contentsOf: String(c.year).utf8) }
        bytes.append(UInt8(ascii: "-")); two(c.month); bytes.append(UInt8(ascii: "-")); two(c.day)
        bytes.append(UInt8(ascii: "T")); two(c.hour); bytes.append(UInt8(ascii: ":")); two(c.minute)
        bytes.append(UInt8(ascii: ":")); two(c.second)
        bytes.append(contentsOf: "Z\"".utf8)
    }

    /// Any value at `level`: the common leaf types directly (elements of arrays come here as generics, and a
    /// metatype comparison is cheaper than a dynamic cast), others by their own `encode(to:)`. `key` is the
    /// value's key in its container, made part of a coding path only when the value needs one.
    func encode<T: Encodable>(_ value: T, level: Int, parent: CodingPathNode?, key: any CodingKey) throws {
        if T.self == String.self { write(unsafeBitCast(value, to: String.self)) }
        else if T.self == Int.self { write(integer: unsafeBitCast(value, to: Int.self)) }
        else if T.self == Bool.self { write(unsafeBitCast(value, to: Bool.self)) }
        else if T.self == Date.self { write(unsafeBitCast(value, to: Date.self)) }
        else if T.self == Double.self { try write(unsafeBitCast(value, to: Double.self), path: CodingPathNode.path(CodingPathNode(key, parent: parent))) }
        else {
            try value.encode(to: StreamEncoder(sink: self, level: level, parent: parent, key: key))
            fillAwaitedValue()
        }
    }

    /// The value at the top, which has no key.
    func encodeTop<T: Encodable>(_ value: T) throws {
        awaitingValue = true
        try value.encode(to: StreamEncoder(sink: self, level: 0, parent: nil, key: nil))
        guard !awaitingValue || !bytes.isEmpty else {
            throw EncodingError.invalidValue(value, .init(codingPath: [], debugDescription: "Top-level \(T.self) did not encode any values."))
        }
        fillAwaitedValue()
    }
}

final class StreamEncoder: Encoder {
    let sink: JSONSink
    /// The level of the value this encodes: its container, if it opens one, is level + 1.
    let level: Int
    /// The value's container's path and the value's key in it (nil at the top); joined only when a container
    /// or an error needs the whole path, so a leaf such as a piece allocates nothing for it.
    let parent: CodingPathNode?
    let key: (any CodingKey)?
    var path: CodingPathNode? { key.map { CodingPathNode($0, parent: parent) } ?? parent }
    var codingPath: [any CodingKey] { CodingPathNode.path(path) }
    var userInfo: [CodingUserInfoKey: Any] { [:] }

    init(sink: JSONSink, level: Int, parent: CodingPathNode?, key: (any CodingKey)?) {
        self.sink = sink
        self.level = level
        self.parent = parent
        self.key = key
    }

    func container<Key: CodingKey>(keyedBy type: Key.Type) -> KeyedEncodingContainer<Key> {
        let id = sink.openContainer(level: level, isObject: true)
        return KeyedEncodingContainer(StreamKeyedContainer<Key>(sink: sink, level: level + 1, id: id, path: path))
    }

    func unkeyedContainer() -> any UnkeyedEncodingContainer {
        let id = sink.openContainer(level: level, isObject: false)
        return StreamUnkeyedContainer(sink: sink, level: level + 1, id: id, path: path)
    }

    func singleValueContainer() -> any SingleValueEncodingContainer { StreamSingleValue(encoder: self) }
}

struct StreamKeyedContainer<Key: CodingKey>: KeyedEncodingContainerProtocol {
    let sink: JSONSink
    let level: Int
    let id: Int
    let path: CodingPathNode?
    var codingPath: [any CodingKey] { CodingPathNode.path(path) }

    private func begin(_ key: Key) { sink.beginElement(level: level, id: id, key: key.stringValue) }

    mutating func encodeNil(forKey key: Key) throws { begin(key); sink.writeNull() }
    mutating func encode(_ value: Bool, forKey key: Key) throws { begin(key); sink.write(value) }
    mutating func encode(_ value: String, forKey key: Key) throws { begin(key); sink.write(value) }
    mutating func encode(_ value: Double, forKey key: Key) throws {
        begin(key); try sink.write(value, path: CodingPathNode.path(CodingPathNode(key, parent: path)))
    }
    mutating func encode(_ value: Float, forKey key: Key) throws { try encode(Double(value), forKey: key) }
    mutating func encode(_ value: Int, forKey key: Key) throws { begin(key); sink.write(integer: value) }
    mutating func encode(_ value: Int8, forKey key: Key) throws { begin(key); sink.write(integer: value) }
    mutating func encode(_ value: Int16, forKey key: Key) throws { begin(key); sink.write(integer: value) }
    mutating func encode(_ value: Int32, forKey key: Key) throws { begin(key); sink.write(integer: value) }
    mutating func encode(_ value: Int64, forKey key: Key) throws { begin(key); sink.write(integer: value) }
    mutating func encode(_ value: UInt, forKey key: Key) throws { begin(key); sink.write(integer: value) }
    mutating func encode(_ value: UInt8, forKey key: Key) throws { begin(key); sink.write(integer: value) }
    mutating func encode(_ value: UInt16, forKey key: Key) throws { begin(key); sink.write(integer: value) }
    mutating func encode(_ value: UInt32, forKey key: Key) throws { begin(key); sink.write(integer: value) }
    mutating func encode(_ value: UInt64, forKey key: Key) throws { begin(key); sink.write(integer: value) }
    mutating func encode<T: Encodable>(_ value: T, forKey key: Key) throws {
        begin(key)
        try sink.encode(value, level: level, parent: path, key: key)
    }

    mutating func nestedContainer<NestedKey: CodingKey>(keyedBy keyType: NestedKey.Type, forKey key: Key) -> KeyedEncodingContainer<NestedKey> {
        begin(key)
        let nested = sink.openContainer(level: level, isObject: true)
        return KeyedEncodingContainer(StreamKeyedContainer<NestedKey>(sink: sink, level: level + 1, id: nested, path: CodingPathNode(key, parent: path)))
    }

    mutating func nestedUnkeyedContainer(forKey key: Key) -> any UnkeyedEncodingContainer {
        begin(key)
        let nested = sink.openContainer(level: level, isObject: false)
        return StreamUnkeyedContainer(sink: sink, level: level + 1, id: nested, path: CodingPathNode(key, parent: path))
    }

    mutating func superEncoder() -> any Encoder {
        sink.beginElement(level: level, id: id, key: "super")
        return StreamEncoder(sink: sink, level: level, parent: path, key: nil)
    }

    mutating func superEncoder(forKey key: Key) -> any Encoder {
        begin(key)
        return StreamEncoder(sink: sink, level: level, parent: path, key: key)
    }
}

struct StreamUnkeyedContainer: UnkeyedEncodingContainer {
    let sink: JSONSink
    let level: Int
    let id: Int
    let path: CodingPathNode?
    var codingPath: [any CodingKey] { CodingPathNode.path(path) }
    var count: Int { sink.count(level: level, id: id) }

    private func begin() -> Int { sink.beginElement(level: level, id: id, key: nil) }

    mutating func encodeNil() throws { _ = begin(); sink.writeNull() }
    mutating func encode(_ value: Bool) throws { _ = begin(); sink.write(value) }
    mutating func encode(_ value: String) throws { _ = begin(); sink.write(value) }
    mutating func encode(_ value: Double) throws {
        let index = begin()
        try sink.write(value, path: CodingPathNode.path(CodingPathNode(IndexKey(intValue: index), parent: path)))
    }
    mutating func encode(_ value: Float) throws { try encode(Double(value)) }
    mutating func encode(_ value: Int) throws { _ = begin(); sink.write(integer: value) }
    mutating func encode(_ value: Int8) throws { _ = begin(); sink.write(integer: value) }
    mutating func encode(_ value: Int16) throws { _ = begin(); sink.write(integer: value) }
    mutating func encode(_ value: Int32) throws { _ = begin(); sink.write(integer: value) }
    mutating func encode(_ value: Int64) throws { _ = begin(); sink.write(integer: value) }
    mutating func encode(_ value: UInt) throws { _ = begin(); sink.write(integer: value) }
    mutating func encode(_ value: UInt8) throws { _ = begin(); sink.write(integer: value) }
    mutating func encode(_ value: UInt16) throws { _ = begin(); sink.write(integer: value) }
    mutating func encode(_ value: UInt32) throws { _ = begin(); sink.write(integer: value) }
    mutating func encode(_ value: UInt64) throws { _ = begin(); sink.write(integer: value) }
    mutating func encode<T: Encodable>(_ value: T) throws {
        let index = begin()
        try sink.encode(value, level: level, parent: path, key: IndexKey(intValue: index))
    }

    mutating func nestedContainer<NestedKey: CodingKey>(keyedBy keyType: NestedKey.Type) -> KeyedEncodingContainer<NestedKey> {
        let index = begin()
        let nested = sink.openContainer(level: level, isObject: true)
        return KeyedEncodingContainer(StreamKeyedContainer<NestedKey>(sink: sink, level: level + 1, id: nested,
                                                                      path: CodingPathNode(IndexKey(intValue: index), parent: path)))
    }

    mutating func nestedUnkeyedContainer() -> any UnkeyedEncodingContainer {
        let index = begin()
        let nested = sink.openContainer(level: level, isObject: false)
        return StreamUnkeyedContainer(sink: sink, level: level + 1, id: nested, path: CodingPathNode(IndexKey(intValue: index), parent: path))
    }

    mutating func superEncoder() -> any Encoder {
        let index = begin()
        return StreamEncoder(sink: sink, level: level, parent: path, key: IndexKey(intValue: index))
    }
}

struct StreamSingleValue: SingleValueEncodingContainer {
    let encoder: StreamEncoder
    var codingPath: [any CodingKey] { encoder.codingPath }
    private var sink: JSONSink { encoder.sink }

    mutating func encodeNil() throws { sink.writeNull() }
    mutating func encode(_ value: Bool) throws { sink.write(value) }
    mutating func encode(_ value: String) throws { sink.write(value) }
    mutating func encode(_ value: Double) throws { try sink.write(value, path: encoder.codingPath) }
    mutating func encode(_ value: Float) throws { try encode(Double(value)) }
    mutating func encode(_ value: Int) throws { sink.write(integer: value) }
    mutating func encode(_ value: Int8) throws { sink.write(integer: value) }
    mutating func encode(_ value: Int16) throws { sink.write(integer: value) }
    mutating func encode(_ value: Int32) throws { sink.write(integer: value) }
    mutating func encode(_ value: Int64) throws { sink.write(integer: value) }
    mutating func encode(_ value: UInt) throws { sink.write(integer: value) }
    mutating func encode(_ value: UInt8) throws { sink.write(integer: value) }
    mutating func encode(_ value: UInt16) throws { sink.write(integer: value) }
    mutating func encode(_ value: UInt32) throws { sink.write(integer: value) }
    mutating func encode(_ value: UInt64) throws { sink.write(integer: value) }
    mutating func encode<T: Encodable>(_ value: T) throws {
        // The same value, encoded by its own type now (an Optional or a wrapper handing its payload on).
        if let key = encoder.key { try sink.encode(value, level: encoder.level, parent: encoder.parent, key: key) }
        else if encoder.parent == nil { try sink.encodeTop(value) }
        else { try value.encode(to: StreamEncoder(sink: sink, level: encoder.level, parent: encoder.parent, key: nil)) }
    }
}
