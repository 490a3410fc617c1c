import Foundation
import NIOCore
import NIOPosix
import NIOSSL

/// Where and how an e-mail receiver sends.
public struct EmailSettings: Sendable, Equatable {
    public var to: [String]
    public var from: String
    public var host: String
    public var port: Int
    /// Refuse to send unless the server offers STARTTLS (default); false still upgrades when it is offered.
    public var requireTLS = true
    /// TLS from the first byte (SMTPS, RFC 8314), as port 465 expects; STARTTLS is then not used.
    public var implicitTLS = false
    public var insecureSkipVerify = false
    /// A PEM file of certificates to trust (a private CA or the server's self-signed certificate).
    public var caFile: String?
    public var username: String?
    public var password: String?
    /// The name this agent gives in EHLO.
    public var hello = "localhost"
}

/// Just enough SMTP (RFC 5321) to hand a message to a mail server: EHLO, STARTTLS (RFC 3207) or implicit TLS
/// (RFC 8314, port 465), AUTH PLAIN or LOGIN (RFC 4954), MAIL, RCPT, DATA. A 4xx answer is worth a retry, a 5xx
/// is not; a connection that fails or stalls past the timeout is retried.
enum SMTPClient {
    struct Reply {
        let code: Int
        let lines: [String]
        var text: String { "\(code) " + lines.joined(separator: " / ") }
    }

    enum Failure: Error {
        case reply(String, Reply)
        case closed
        /// The connection failed under the conversation (a TLS handshake, a reset).
        case io(String)
        case malformed(String)
    }

    static func send(_ message: Data, settings: EmailSettings, timeout: TimeInterval) async -> DeliveryResult {
        let started = ContinuousClock.now
        do {
            let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
                .connectTimeout(.milliseconds(Int64(min(timeout, 3) * 1000)))
                .connect(host: settings.host, port: settings.port) { channel in
                    channel.eventLoop.makeCompletedFuture {
                        if settings.implicitTLS {
                            try channel.pipeline.syncOperations.addHandler(
                                try NIOSSLClientHandler(context: try tlsContext(settings), serverHostname: serverName(settings)))
                        }
                        return try NIOAsyncChannel<ByteBuffer, ByteBuffer>(wrappingChannelSynchronously: channel)
                    }
                }
            // A stalled server: the connection is closed under the conversation, which then fails; the failure
            // is reported as the timeout, not as whatever write or read the close cut short.
            let deadline = channel.channel.eventLoop.scheduleTask(in: .milliseconds(Int64(timeout * 1000))) { channel.channel.close(promise: nil) }
            defer { deadline.cancel() }
            func stalled() -> Bool { ContinuousClock.now - started >= .milliseconds(Int64(timeout * 1000)) }
            let timedOut = DeliveryResult.retry(status: nil, reason: "SMTP: no answer within \(Int(timeout)) s (the receiver's timeout)")
            return try await channel.executeThenClose { inbound, outbound in
                var session = Session(lines: LineReader(inbound.makeAsyncIterator()), outbound: outbound)
                do {
                    try await session.converse(message, settings: settings) {
                        try await channel.channel.pipeline.addHandler(
                            try NIOSSLClientHandler(context: try tlsContext(settings), serverHostname: serverName(settings)), position: .first).get()
                    }
                    return .delivered(status: 250)
                } catch Failure.reply(let step, let reply) {
                    let reason = "SMTP \(step): \(reply.text.prefix(200))"
                    return (400..<500).contains(reply.code) ? .retry(status: reply.code, reason: reason) : .rejected(status: reply.code, reason: reason)
                } catch Failure.closed {
                    if stalled() { return timedOut }
                    return .retry(status: nil, reason: "SMTP: the server closed the connection")
                } catch Failure.io(let reason) {
                    if stalled() { return timedOut }
                    return .retry(status: nil, reason: "SMTP: \(reason.prefix(250))")
                } catch Failure.malformed(let text) {
                    return .retry(status: nil, reason: "SMTP: not an SMTP reply: \(text)")
                }
            }
        } catch {
            return .retry(status: nil, reason: "SMTP: \(error)".prefix(300).description)
        }
    }

    static func tlsContext(_ settings: EmailSettings) throws -> NIOSSLContext {
        var tls = TLSConfiguration.makeClientConfiguration()
        if settings.insecureSkipVerify { tls.certificateVerification = .none }
        if let file = settings.caFile { tls.trustRoots = .file(file) }
        return try NIOSSLContext(configuration: tls)
    }

    /// The name sent for SNI and checked in the certificate: SNI takes names, not addresses.
    static func serverName(_ settings: EmailSettings) -> String? {
        settings.host.allSatisfy { $0.isNumber || $0 == "." || $0 == ":" } ? nil : settings.host
    }

    struct Session {
        var lines: LineReader
        let outbound: NIOAsyncChannelOutboundWriter<ByteBuffer>

        mutating func converse(_ message: Data, settings: EmailSettings, startTLS: () async throws -> Void) async throws {
            try expect(await reply(), 220, "greeting")
            var features = try await hello(settings)
            if settings.implicitTLS {
                // The connection is encrypted already.
            } else if features.contains("STARTTLS") {
                try await command("STARTTLS", expect: 220)
                try await startTLS()
                features = try await hello(settings)
            } else if settings.requireTLS {
                throw Failure.reply("STARTTLS", Reply(code: 454, lines: ["the server does not offer STARTTLS (require_tls is on)"]))
            }
            if let username = settings.username, let password = settings.password {
                let auth = features.first { $0.hasPrefix("AUTH") }.map { Set($0.split(separator: " ").dropFirst().map { $0.uppercased() }) } ?? []
                if auth.contains("PLAIN") || !auth.contains("LOGIN") {
                    try await command("AUTH PLAIN " + Data("\0\(username)\0\(password)".utf8).base64EncodedString(), expect: 235, step: "AUTH")
                } else {
                    try await command("AUTH LOGIN", expect: 334, step: "AUTH")
                    try await command(Data(username.utf8).base64EncodedString(), expect: 334, step: "AUTH")
                    try await command(Data(password.utf8).base64EncodedString(), expect: 235, step: "AUTH")
                }
            }
            try await command("MAIL FROM:<\(settings.from)>", expect: 250, step: "MAIL FROM")
            for recipient in settings.to { try await command("RCPT TO:<\(recipient)>", expect: 250, step: "RCPT TO") }
            try await command("DATA", expect: 354)
            try await write(SMTPClient.dotStuffed(message))
            try expect(await reply(), 250, "message")
            try? await write(Data("QUIT\r\n".utf8))
        }

        /// EHLO; returns the extensions the server offers, upper-cased.
        mutating func hello(_ settings: EmailSettings) async throws -> [String] {
            try await write(Data("EHLO \(settings.hello)\r\n".utf8))
            let answer = try await reply()
            try expect(answer, 250, "EHLO")
            return answer.lines.dropFirst().map { $0.uppercased() }
        }

        mutating func command(_ line: String, expect code: Int, step: String? = nil) async throws {
            try await write(Data((line + "\r\n").utf8))
            try expect(await reply(), code, step ?? line)
        }

        func expect(_ reply: Reply, _ code: Int, _ step: String) throws {
            // 250 and 251 (a forwarded recipient) both accept.
            guard reply.code == code || (code == 250 && reply.code == 251) else { throw Failure.reply(step, reply) }
        }

        mutating func write(_ data: Data) async throws {
            do { try await outbound.write(ByteBuffer(bytes: data)) } catch {
                // A failed write says only that the channel closed; why (a TLS alert, a reset) arrives inbound.
                do { _ = try await lines.next() } catch let failure as Failure {
                    if case .io = failure { throw failure }
                } catch {}
                throw Failure.io("\(error)")
            }
        }

        /// One reply, multi-line ones (`250-…` … `250 …`) gathered.
        mutating func reply() async throws -> Reply {
            var texts: [String] = []
            for _ in 0..<100 {
                let line = try await lines.next()
                guard line.count >= 3, let code = Int(line.prefix(3)) else { throw Failure.malformed(String(line.prefix(100))) }
                texts.append(String(line.dropFirst(4)))
                if line.count == 3 || line[line.index(line.startIndex, offsetBy: 3)] == " " { return Reply(code: code, lines: texts) }
            }
            throw Failure.malformed("a reply of more than 100 lines")
        }
    }

    /// CRLF line endings, a leading dot doubled (RFC 5321 4.5.2), and the closing `.` line.
    static func dotStuffed(_ message: Data) -> Data {
        var out = Data()
        out.reserveCapacity(message.count + 64)
        var atLineStart = true
        var previous: UInt8 = 0
        for byte in message {
            if byte == UInt8(ascii: "\n") && previous != UInt8(ascii: "\r") { out.append(UInt8(ascii: "\r")) }
            if atLineStart && byte == UInt8(ascii: ".") { out.append(UInt8(ascii: ".")) }
            out.append(byte)
            atLineStart = byte == UInt8(ascii: "\n")
            previous = byte
        }
        if !atLineStart { out.append(contentsOf: Array("\r\n".utf8)) }
        out.append(contentsOf: Array(".\r\n".utf8))
        return out
    }
}

/// Lines of the server's replies, CRLF-terminated.
struct LineReader {
    var iterator: NIOAsyncChannelInboundStream<ByteBuffer>.AsyncIterator
    var buffer: [UInt8] = []

    init(_ iterator: NIOAsyncChannelInboundStream<ByteBuffer>.AsyncIterator) { self.iterator = iterator }

    mutating func next() async throws -> String {
        while true {
            if let end = buffer.firstIndex(of: UInt8(ascii: "\n")) {
                let line = buffer[..<end].last == UInt8(ascii: "\r") ? buffer[..<(end - 1)] : buffer[..<end]
                defer { buffer.removeSubrange(...end) }
                return String(decoding: line, as: UTF8.self)
            }
            guard buffer.count < 64 * 1024 else { throw SMTPClient.Failure.malformed("a line over 64 KB") }
            let chunk: ByteBuffer?
            do { chunk = try await iterator.next() } catch { throw SMTPClient.Failure.io("\(error)") }
            guard let chunk else { throw SMTPClient.Failure.closed }
            buffer.append(contentsOf: chunk.readableBytesView)
        }
    }
}
