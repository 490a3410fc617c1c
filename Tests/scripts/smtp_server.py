#!/usr/bin/env python3
"""A local SMTP server for the e-mail receiver's tests (Debian's python3-aiosmtpd).

Prints `listening PORT`, then one JSON line per message received:
{"from", "to", "data", "tls", "auth"}. Options: --starttls CERT KEY (offers STARTTLS and requires it),
--implicit-tls CERT KEY (TLS from the first byte, as on port 465),
--auth USER:PASSWORD (AUTH PLAIN/LOGIN required), --fail N (answers the first N messages 451: retry).
Runs until killed.
"""
import argparse
import asyncio
import json
import ssl

from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--starttls", nargs=2, metavar=("CERT", "KEY"))
    parser.add_argument("--implicit-tls", nargs=2, metavar=("CERT", "KEY"))
    parser.add_argument("--auth")
    parser.add_argument("--fail", type=int, default=0)
    args = parser.parse_args()
    failures = {"left": args.fail}

    class Handler:
        async def handle_DATA(self, server, session, envelope):
            if failures["left"] > 0:
                failures["left"] -= 1
                print(json.dumps({"refused": True}), flush=True)
                return "451 4.3.0 try again later"
            print(json.dumps({
                "from": envelope.mail_from, "to": envelope.rcpt_tos,
                "data": envelope.original_content.decode("utf-8", "replace"),
                "tls": session.ssl is not None, "auth": bool(session.authenticated),
            }), flush=True)
            return "250 OK"

    def authenticator(server, session, envelope, mechanism, auth_data):
        user, _, password = args.auth.partition(":")
        ok = isinstance(auth_data, LoginPassword) and auth_data.login.decode() == user and auth_data.password.decode() == password
        return AuthResult(success=ok, handled=False)

    def tls(cert_and_key):
        if not cert_and_key:
            return None
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(cert_and_key[0], cert_and_key[1])
        return context

    context, implicit = tls(args.starttls), tls(args.implicit_tls)

    class Session(SMTP):
        def connection_made(self, transport):
            super().connection_made(transport)
            if implicit is not None:
                self.session.ssl = transport.get_extra_info("cipher")  # the whole connection is TLS

    def factory():
        return Session(Handler(), hostname="test.smtp", tls_context=context, require_starttls=context is not None,
                       authenticator=authenticator if args.auth else None, auth_required=bool(args.auth),
                       auth_require_tls=context is not None)

    async def serve():
        server = await asyncio.get_running_loop().create_server(factory, "127.0.0.1", 0, ssl=implicit)
        print("listening", server.sockets[0].getsockname()[1], flush=True)
        await server.serve_forever()

    asyncio.run(serve())


if __name__ == "__main__":
    main()
