import Foundation
import JSONCore
import Mustache

/// A receiver's `title` and `body`, Mustache templates (https://mustache.github.io) rendered for each
/// notification. `{{> name}}` includes a template from the file's `templates:`. In the body, `{{value}}` is
/// escaped for the receiver's service (Slack's &, < and >; Discord's @ mentions) and `{{{value}}}` is not;
/// the title is plain text.
enum MessageTemplates {
    /// Checks a template and every template it may include, for the rules file's problems.
    static func check(_ source: String, path: String) throws {
        do { _ = try MustacheTemplate(string: source) } catch {
            throw ConfigProblem(path, "not a valid Mustache template: \(error)")
        }
    }

    static func render(_ n: AlertNotification, receiver: ReceiverConfig, templates: [String: String]) -> RenderedText? {
        guard receiver.titleTemplate != nil || receiver.bodyTemplate != nil else { return nil }
        let context = self.context(n)
        func render(_ source: String?, contentType: String) -> String? {
            guard let source else { return nil }
            var library = MustacheLibrary()
            for (name, text) in templates { try? library.register("{{% CONTENT_TYPE: \(contentType)}}" + text, named: name) }
            guard let template = try? MustacheTemplate(string: "{{% CONTENT_TYPE: \(contentType)}}" + source) else { return nil }
            return template.render(context, library: library).trimmingCharacters(in: .whitespacesAndNewlines)
        }
        return RenderedText(title: render(receiver.titleTemplate, contentType: "TEXT").map { $0.replacingOccurrences(of: "\n", with: " ") },
                            body: render(receiver.bodyTemplate, contentType: contentType(receiver.kind)))
    }

    /// One content type per kind, registered with the template engine once.
    static func contentType(_ kind: ReceiverConfig.Kind) -> String {
        _ = registered
        return "LIAPTUI_" + kind.rawValue.uppercased()
    }

    private static let registered: Void = {
        for kind in ReceiverConfig.Kind.allCases {
            MustacheContentTypes.register(Escaping(escape: kind.implementation.escape), named: "LIAPTUI_" + kind.rawValue.uppercased())
        }
    }()

    struct Escaping: MustacheContentType {
        let escape: @Sendable (String) -> String
        func escapeText(_ text: String) -> String { escape(text) }
    }

    /// What a template can use: the notification as Alertmanager's templates see it, with this agent's extras.
    static func context(_ n: AlertNotification) -> [String: Any] {
        func alert(_ a: AlertInstance) -> [String: Any] {
            var fields: [String: Any] = [
                "status": a.status, "firing": a.status == "firing", "name": a.name, "subject": a.subject,
                "labels": a.labels as [String: Any], "annotations": a.annotations as [String: Any],
                "startsAt": Payloads.time(a.startsAt), "fingerprint": a.fingerprint,
                "dashboardURL": "\(n.externalURL)/?range=24h&instance=\(a.labels["instance_id"] ?? "all")",
            ]
            if let value = a.value { fields["value"] = JSON.format((value * 100).rounded() / 100) }
            if let end = a.endsAt { fields["endsAt"] = Payloads.time(end) }
            return fields
        }
        let sorted = Payloads.sorted(n)
        return [
            "status": n.status, "receiver": n.receiver, "title": Payloads.title(n), "externalURL": n.externalURL,
            "groupLabels": n.groupLabels as [String: Any], "commonLabels": n.commonLabels as [String: Any],
            "commonAnnotations": n.commonAnnotations as [String: Any],
            "alerts": sorted.map(alert), "firing": sorted.filter { $0.status == "firing" }.map(alert),
            "resolved": sorted.filter { $0.status == "resolved" }.map(alert),
            "numFiring": n.firing.count, "numResolved": n.resolved.count,
        ]
    }
}
