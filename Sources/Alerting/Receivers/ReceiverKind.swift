import AsyncHTTPClient
import Foundation
import JSONCore
import NIOCore

/// One receiver of the rules file (`receivers:`), of any kind but `heartbeat`.
public struct ReceiverConfig: Sendable, Equatable {
    public enum Kind: String, Sendable, CaseIterable {
        case slack, discord, teams, webhook, pagerduty, email

        /// The code of each kind: one file each under Receivers/.
        var implementation: any ReceiverKind.Type {
            switch self {
            case .slack: SlackReceiver.self
            case .discord: DiscordReceiver.self
            case .teams: TeamsReceiver.self
            case .webhook: WebhookReceiver.self
            case .pagerduty: PagerDutyReceiver.self
            case .email: EmailReceiver.self
            }
        }
    }

    public var name: String
    public var kind: Kind
    /// Where HTTP kinds post (PagerDuty's has a default); empty for e-mail.
    public var url: String
    /// Standard Webhooks signing secret (`whsec_<base64>`), generic webhooks only.
    public var secret: String?
    public var timeout: TimeInterval
    /// PagerDuty's integration key.
    public var routingKey: String?
    public var email: EmailSettings?
    /// Mustache templates for the message's title and body; nil keeps the built-in layout.
    public var titleTemplate: String?
    public var bodyTemplate: String?

    public init(name: String, kind: Kind, url: String, secret: String? = nil, timeout: TimeInterval = 10) {
        self.name = name
        self.kind = kind
        self.url = url
        self.secret = secret
        self.timeout = timeout
    }

    static let commonKeys: Set<String> = ["name", "type", "timeout", "title", "body"]

    static func parse(_ item: JSON, type: String, path: String) throws -> ReceiverConfig {
        guard let kind = Kind(rawValue: type) else {
            throw ConfigProblem(path + ".type", "must be \(Kind.allCases.map(\.rawValue).joined(separator: ", ")) or heartbeat")
        }
        let f = try Fields(item, path: path, allowed: commonKeys.union(kind.implementation.keys))
        var receiver = ReceiverConfig(name: try f.required("name"), kind: kind, url: "", timeout: try f.duration("timeout") ?? 10)
        receiver.titleTemplate = try f.string("title")
        receiver.bodyTemplate = try f.string("body")
        try kind.implementation.configure(&receiver, f)
        return receiver
    }
}

/// What one kind of receiver does: reads its settings, shapes its messages for its service, and delivers them.
protocol ReceiverKind {
    /// The keys its entry in the rules file may use besides name, type, timeout, title and body.
    static var keys: Set<String> { get }
    static func configure(_ receiver: inout ReceiverConfig, _ f: Fields) throws
    /// The outbox body of an alert notification; `text` is the receiver's own title and body, when it has templates.
    static func alert(_ n: AlertNotification, text: RenderedText?, receiver: ReceiverConfig) -> Data
    /// The outbox body of a free-form message (the daily review); nil: this kind takes none.
    static func message(title: String, markdown: String, data: JSON, receiver: ReceiverConfig) -> Data?
    /// How its templates' values are escaped.
    static var escape: @Sendable (String) -> String { get }
    /// One attempt at delivering an outbox body.
    static func deliver(_ body: Data, messageID: String, receiver: ReceiverConfig, now: Date, client: HTTPClient) async -> DeliveryResult
}

extension ReceiverKind {
    static var escape: @Sendable (String) -> String { { $0 } }

    /// Most kinds post JSON to their URL.
    static func deliver(_ body: Data, messageID: String, receiver: ReceiverConfig, now: Date, client: HTTPClient) async -> DeliveryResult {
        await HTTPPost.send(body, to: receiver, headers: [], client: client)
    }
}

/// A chat service's incoming webhook: a URL, and a JSON body of the service's own shape.
protocol ChatWebhookKind: ReceiverKind {
    static func payload(_ n: AlertNotification, text: RenderedText?) -> JSON
}

extension ChatWebhookKind {
    static var keys: Set<String> { ["url"] }

    static func configure(_ receiver: inout ReceiverConfig, _ f: Fields) throws {
        receiver.url = try f.httpURL("url")
    }

    static func alert(_ n: AlertNotification, text: RenderedText?, receiver: ReceiverConfig) -> Data {
        Data(payload(n, text: text).text.utf8)
    }
}

/// A receiver's title and body from its templates. The body's values are escaped for the service (its markup
/// is the template's own); the title is plain text, which each kind escapes where its service reads markup.
struct RenderedText: Sendable, Equatable {
    var title: String?
    var body: String?
}

/// The POST every HTTP kind makes, and how its answer is read.
enum HTTPPost {
    static func send(_ body: Data, to receiver: ReceiverConfig, headers: [(String, String)], client: HTTPClient) async -> DeliveryResult {
        var request = HTTPClientRequest(url: receiver.url)
        request.method = .POST
        request.headers.add(name: "Content-Type", value: "application/json")
        request.headers.add(name: "User-Agent", value: "liaptui-metrics-agent")
        for (name, value) in headers { request.headers.add(name: name, value: value) }
        request.body = .bytes(ByteBuffer(bytes: body))
        do {
            let response = try await client.execute(request, timeout: .milliseconds(Int64(receiver.timeout * 1000)))
            let status = Int(response.status.code)
            let text = (try? await response.body.collect(upTo: 64 * 1024)).map { String(buffer: $0) } ?? ""
            switch status {
            case 200..<300:
                return .delivered(status: status)
            case 429:
                return .rateLimited(status: status, after: Delivery.retryAfter(headers: response.headers, body: text))
            case 408, 500...599:
                return .retry(status: status, reason: "HTTP \(status): \(text.prefix(200))")
            default:
                return .rejected(status: status, reason: "HTTP \(status): \(text.prefix(200))")
            }
        } catch {
            return .retry(status: nil, reason: "\(error)".prefix(300).description)
        }
    }
}
