#!/usr/bin/env python3
"""Checks that an HTML document is well formed: every element closed in order, list items inside a list,
table rows inside a table, one html/head/body. Prints `html ok` (exit 0) or the first problem (exit 1).

usage: check_html.py FILE
"""
import sys
from html.parser import HTMLParser

VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}
PARENTS = {"li": {"ul", "ol"}, "tr": {"table", "tbody", "thead", "tfoot"}, "td": {"tr"}, "th": {"tr"},
           "head": {"html"}, "body": {"html"}, "title": {"head"}, "meta": {"head"}, "style": {"head", "body", "div"}}


class Checker(HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.stack = []
        self.seen = {}

    def fail(self, message):
        line, column = self.getpos()
        raise SystemExit(f"line {line}, column {column}: {message} (open: {' > '.join(self.stack)})")

    def handle_starttag(self, tag, attrs):
        allowed = PARENTS.get(tag)
        if allowed and (not self.stack or self.stack[-1] not in allowed):
            self.fail(f"<{tag}> inside <{self.stack[-1] if self.stack else 'nothing'}>")
        if tag in ("html", "head", "body"):
            self.seen[tag] = self.seen.get(tag, 0) + 1
            if self.seen[tag] > 1:
                self.fail(f"a second <{tag}>")
        if tag not in VOID:
            self.stack.append(tag)

    def handle_endtag(self, tag):
        if tag in VOID:
            return
        if not self.stack or self.stack[-1] != tag:
            self.fail(f"</{tag}> does not close the open element")
        self.stack.pop()


def main(path):
    checker = Checker()
    with open(path, encoding="utf-8") as f:
        checker.feed(f.read())
    checker.close()
    if checker.stack:
        raise SystemExit(f"not closed at the end: {' > '.join(checker.stack)}")
    print("html ok")


if __name__ == "__main__":
    main(sys.argv[1])
