import JSONCore
import Testing

@Suite struct JSONTests {
    @Test func parsesAndWritesRoundTrip() throws {
        let text = #"{"a":[1,2.5,-3,true,false,null],"b":{"c":"d\n\"\u00e9\ud83c\udfb2"},"e":""}"#
        let value = try JSONParser.parse(text)
        #expect(value["a"]?.array?.count == 6)
        #expect(value["b"]?["c"]?.string == "d\n\"é🎲")
        #expect(try JSONParser.parse(value.text) == value)
    }

    @Test(arguments: ["", "{", "[1,]", "{\"a\":}", "01", "1.", "-", "\"\\x\"", "\"\u{01}\"", "nul", "[1] 2",
                      "\"\\ud800\"", "{\"a\" 1}", String(repeating: "[", count: 70) + String(repeating: "]", count: 70)])
    func rejectsInvalidText(text: String) {
        #expect(throws: JSONParseError.self) { try JSONParser.parse(text) }
    }

    @Test func escapesForHTMLAndControlCharacters() {
        #expect(JSON.string("</script><b>&").text == #""\u003c/script\u003e\u003cb\u003e\u0026""#)
        #expect(JSON.string("\u{01}").text == #""\u0001""#)
        #expect(JSON.number(3).text == "3")
        #expect(JSON.number(0.5).text == "0.5")
        #expect(JSON.number(.nan).text == "null")
        #expect(JSON.string("a\u{2028}b\u{2029}c\u{2027}").text == #""a\u2028b\u2029c\#u{2027}""#)
        #expect(JSON.string("\u{1f}\u{7f}é").text == "\"\\u001f\u{7f}é\"")
    }

    @Test func randomStringsRoundTrip() throws {
        var random = SystemRandomNumberGenerator()
        let alphabet: [Character] = ["a", "Z", "0", " ", "\"", "\\", "/", "<", ">", "&", "\n", "\r", "\t", "\u{0}", "\u{1b}",
                                     "é", "中", "🎲", "\u{2028}", "\u{2029}", "\u{2027}", "\u{7f}"]
        for _ in 0..<2_000 {
            let text = String((0..<Int.random(in: 0...24, using: &random)).map { _ in alphabet.randomElement(using: &random)! })
            let value = JSON.object([text: .array([.string(text)])])
            #expect(try JSONParser.parse(value.text) == value, "\(text.debugDescription)")
        }
    }
}
