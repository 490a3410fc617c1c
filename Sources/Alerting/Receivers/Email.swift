import AsyncHTTPClient
import Foundation
import JSONCore

/// E-mail over SMTP with STARTTLS or implicit TLS, and login: a plain-text message per notification, its subject the title.
/// The outbox holds the whole message (RFC 5322), so a retry sends the same bytes with the same Message-ID.
enum EmailReceiver: ReceiverKind {
    static let keys: Set<String> = [
        "to", "from", "smarthost", "require_tls", "implicit_tls", "tls_insecure_skip_verify", "ca_file", "auth_username", "auth_password", "hello",
    ]

    static func configure(_ receiver: inout ReceiverConfig, _ f: Fields) throws {
        let to = try (f.strings("to") ?? (try f.string("to")).map { $0.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) } }) ?? []
        guard !to.isEmpty, to.allSatisfy(isAddress) else { throw ConfigProblem(f.at("to"), "one address or a list of them (name@example.com) is required") }
        let from = try f.required("from")
        guard isAddress(from) else { throw ConfigProblem(f.at("from"), "'\(from)' is not an address (name@example.com)") }
        let smarthost = try f.required("smarthost")
        guard let colon = smarthost.lastIndex(of: ":"), let port = Int(smarthost[smarthost.index(after: colon)...]), (1...65_535).contains(port),
              colon > smarthost.startIndex else {
            throw ConfigProblem(f.at("smarthost"), "'\(smarthost)' must be host:port, e.g. smtp.example.com:587")
        }
        var settings = EmailSettings(to: to, from: from, host: String(smarthost[..<colon]).trimmingCharacters(in: ["[", "]"]), port: port)
        // Port 465 is SMTPS (TLS from the first byte), as in Alertmanager; implicit_tls says so for another port.
        settings.implicitTLS = port == 465
        for (key, flag) in [("require_tls", \EmailSettings.requireTLS), ("implicit_tls", \EmailSettings.implicitTLS),
                            ("tls_insecure_skip_verify", \EmailSettings.insecureSkipVerify)] {
            guard let value = f.value(key) else { continue }
            guard let bool = value.bool else { throw ConfigProblem(f.at(key), "must be true or false") }
            settings[keyPath: flag] = bool
        }
        settings.caFile = try f.string("ca_file")
        if let file = settings.caFile, !FileManager.default.isReadableFile(atPath: file) {
            throw ConfigProblem(f.at("ca_file"), "cannot read \(file)")
        }
        settings.username = try f.string("auth_username")
        settings.password = try f.string("auth_password")
        if (settings.username == nil) != (settings.password == nil) {
            throw ConfigProblem(f.path, "auth_username and auth_password go together")
        }
        settings.hello = try f.string("hello") ?? settings.hello
        receiver.email = settings
    }

    static func isAddress(_ text: String) -> Bool {
        let parts = text.split(separator: "@", omittingEmptySubsequences: false)
        return parts.count == 2 && !parts[0].isEmpty && !parts[1].isEmpty && !text.contains(where: { $0.isWhitespace || $0 == "<" || $0 == ">" })
    }

    static func alert(_ n: AlertNotification, text: RenderedText?, receiver: ReceiverConfig) -> Data {
        mail(subject: text?.title ?? Payloads.title(n), body: text?.body ?? plainText(n), receiver: receiver)
    }

    static func message(title: String, markdown: String, data: JSON, receiver: ReceiverConfig) -> Data? {
        mail(subject: title, body: markdown, receiver: receiver)
    }

    static func deliver(_ body: Data, messageID: String, receiver: ReceiverConfig, now: Date, client: HTTPClient) async -> DeliveryResult {
        guard let settings = receiver.email else { return .rejected(status: 0, reason: "no e-mail settings") }
        return await SMTPClient.send(body, settings: settings, timeout: receiver.timeout)
    }

    /// The built-in text: each alert's summary, where, how bad, since when, and its description.
    static func plainText(_ n: AlertNotification) -> String {
        var out = "\(n.firing.count) firing, \(n.resolved.count) resolved\n\n"
        for alert in Payloads.sorted(n) {
            out += "\(alert.status == "firing" ? "FIRING" : "RESOLVED"): \(alert.annotations["summary"] ?? alert.name)\n"
            var facts = ["instance \(alert.subject)", "severity \(alert.labels["severity"] ?? "-")", "since \(Payloads.time(alert.startsAt))"]
            if let value = alert.value { facts.append("value \(JSON.format((value * 100).rounded() / 100))") }
            if let end = alert.endsAt { facts.append("resolved \(Payloads.time(end))") }
            out += "  " + facts.joined(separator: " · ") + "\n"
            if let description = alert.annotations["description"] { out += "  " + description + "\n" }
            out += "\n"
        }
        return out + "Dashboard: \(n.externalURL)\n-- \nLiap Tui metrics agent · receiver \(n.receiver)\n"
    }

    /// A complete message: headers (the subject encoded per RFC 2047) and a base64 UTF-8 text body.
    static func mail(subject: String, body: String, receiver: ReceiverConfig, now: Date = Date()) -> Data {
        let settings = receiver.email ?? EmailSettings(to: [], from: "", host: "", port: 0)
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "UTC")
        formatter.dateFormat = "EEE, dd MMM yyyy HH:mm:ss '+0000'"
        var random = SystemRandomNumberGenerator()
        let domain = settings.from.split(separator: "@").last.map(String.init) ?? "localhost"
        let oneLine = subject.replacingOccurrences(of: "\r", with: " ").replacingOccurrences(of: "\n", with: " ")
        let encodedSubject = oneLine.allSatisfy { $0.isASCII } ? oneLine : "=?UTF-8?B?\(Data(oneLine.utf8).base64EncodedString())?="
        let encodedBody = Data(body.utf8).base64EncodedString(options: [.lineLength76Characters, .endLineWithCarriageReturn, .endLineWithLineFeed])
        let headers = [
            "From: \(settings.from)",
            "To: \(settings.to.joined(separator: ", "))",
            "Subject: \(encodedSubject)",
            "Date: \(formatter.string(from: now))",
            "Message-ID: <\(String(random.next() as UInt64, radix: 36)).\(Int(now.timeIntervalSince1970))@\(domain)>",
            "MIME-Version: 1.0",
            "Content-Type: text/plain; charset=utf-8",
            "Content-Transfer-Encoding: base64",
            "Auto-Submitted: auto-generated",
            "X-Mailer: liaptui-metrics-agent",
        ]
        return Data((headers.joined(separator: "\r\n") + "\r\n\r\n" + encodedBody + "\r\n").utf8)
    }
}
