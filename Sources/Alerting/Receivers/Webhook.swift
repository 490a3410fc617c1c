import AsyncHTTPClient
import Foundation
import JSONCore

/// Any HTTP endpoint: Alertmanager's webhook body (version 4), signed with Standard Webhooks headers when the
/// receiver has a secret.
enum WebhookReceiver: ReceiverKind {
    static let keys: Set<String> = ["url", "secret"]

    static func configure(_ receiver: inout ReceiverConfig, _ f: Fields) throws {
        receiver.url = try f.httpURL("url")
        receiver.secret = try f.string("secret")
        if let secret = receiver.secret, StandardWebhooks.key(from: secret) == nil {
            throw ConfigProblem(f.at("secret"), "must be whsec_ followed by base64")
        }
    }

    static func alert(_ n: AlertNotification, text: RenderedText?, receiver: ReceiverConfig) -> Data {
        Data(payload(n, text: text).text.utf8)
    }

    static func message(title: String, markdown: String, data: JSON, receiver: ReceiverConfig) -> Data? {
        Data(JSON.object(["type": "daily_review", "title": .string(title), "review": data]).text.utf8)
    }

    static func deliver(_ body: Data, messageID: String, receiver: ReceiverConfig, now: Date, client: HTTPClient) async -> DeliveryResult {
        let timestamp = Int(now.timeIntervalSince1970)
        var headers = [("webhook-id", messageID), ("webhook-timestamp", String(timestamp))]
        if let secret = receiver.secret, let signature = StandardWebhooks.signature(secret: secret, id: messageID, timestamp: timestamp, body: body) {
            headers.append(("webhook-signature", signature))
        }
        return await HTTPPost.send(body, to: receiver, headers: headers, client: client)
    }

    static func payload(_ n: AlertNotification, text: RenderedText? = nil) -> JSON {
        func labels(_ l: [String: String]) -> JSON { .object(l.mapValues { .string($0) }) }
        var body: JSON = [
            "version": "4",
            "groupKey": .string(n.groupKey),
            "truncatedAlerts": 0,
            "status": .string(n.status),
            "receiver": .string(n.receiver),
            "groupLabels": labels(n.groupLabels),
            "commonLabels": labels(n.commonLabels),
            "commonAnnotations": labels(n.commonAnnotations),
            "externalURL": .string(n.externalURL),
            "alerts": .array(Payloads.sorted(n).map { a in
                [
                    "status": .string(a.status), "labels": labels(a.labels), "annotations": labels(a.annotations),
                    "startsAt": .string(Payloads.time(a.startsAt)), "endsAt": .string(a.endsAt.map(Payloads.time) ?? "0001-01-01T00:00:00Z"),
                    "generatorURL": .string("\(n.externalURL)/?range=24h&instance=\(a.labels["instance_id"] ?? "all")"),
                    "fingerprint": .string(a.fingerprint),
                ]
            }),
        ]
        // Templates add their text beside the Alertmanager fields, which stay as they are.
        if let title = text?.title { body["title"] = .string(title) }
        if let message = text?.body { body["message"] = .string(message) }
        return body
    }
}
