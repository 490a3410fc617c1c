import ArgumentParser
import Foundation

/// Every executable's rule for options: the flag if given, else its environment
/// variable (an empty variable counts as unset), else the default.
public struct FlagOrEnvironment: Sendable {
    private let environment: [String: String]

    public init(_ environment: [String: String] = ProcessInfo.processInfo.environment) {
        self.environment = environment
    }

    public func value(_ flag: String?, _ name: String) -> String? {
        flag ?? environment[name].flatMap { $0.isEmpty ? nil : $0 }
    }

    /// A number from the flag or the variable; a variable that is not a number is a configuration error.
    public func number(_ flag: Double?, _ name: String) throws -> Double? {
        if let flag { return flag }
        guard let text = value(nil, name) else { return nil }
        guard let n = Double(text) else { throw ValidationError("\(name) must be a number, not '\(text)'") }
        return n
    }
}
