#!/usr/bin/python3
"""An SMTP server for msgr's tests (Debian's python3-aiosmtpd).

    smtp_sink.py --port PORT --dir DIR [--auth USER:PASSWORD]
                 [--tls CERT KEY]

Each message it takes is written to DIR as N.eml (the data as received,
dot-unstuffed) and N.json (mail_from, rcpt_tos, auth, tls, peer, queue_id), N
counting from 1; N.json appears last, so a reader never sees half a
message.  It answers DATA with "250 2.0.0 Ok: queued as Q<N>".

What it answers a recipient:
  - DIR/replies, when it lists the address ("ADDRESS CODE TEXT" lines,
    read at each RCPT, so a test changes them while it runs);
  - temp-fail@...  451 4.7.1 (greylisted: try again later)
  - no-such@...    550 5.1.1 (no such mailbox)
  - slow@...       accepted after 5 seconds
  - else 250.
--auth: AUTH PLAIN or LOGIN is required (530 before it), with these
credentials (535 otherwise).  --tls: STARTTLS is offered with this
certificate.
"""

import argparse
import asyncio
import json
import os
import ssl
import sys

from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword


class Sink:
    def __init__(self, directory):
        self.dir = directory
        self.n = 0

    def _listed(self, address):
        try:
            with open(os.path.join(self.dir, 'replies')) as f:
                for line in f:
                    parts = line.strip().split(' ', 1)
                    if len(parts) == 2 and parts[0].lower() == address:
                        return parts[1]
        except FileNotFoundError:
            pass
        return None

    async def handle_RCPT(self, server, session, envelope, address,
                          rcpt_options):
        address = address.lower()
        reply = self._listed(address)
        if reply is not None:
            if reply.startswith('2'):
                envelope.rcpt_tos.append(address)
            return reply
        local = address.split('@', 1)[0]
        if local == 'temp-fail':
            return '451 4.7.1 Greylisted, try again later'
        if local == 'no-such':
            return '550 5.1.1 No such mailbox here'
        if local == 'slow':
            await asyncio.sleep(5)
        envelope.rcpt_tos.append(address)
        return '250 2.1.5 Ok'

    async def handle_DATA(self, server, session, envelope):
        self.n += 1
        n = self.n
        base = os.path.join(self.dir, str(n))
        with open(base + '.eml', 'wb') as f:
            f.write(envelope.original_content)
        login = session.auth_data if session.authenticated else None
        meta = {
            'mail_from': envelope.mail_from,
            'rcpt_tos': envelope.rcpt_tos,
            'auth': login.decode() if isinstance(login, bytes) else login,
            'tls': session.ssl is not None,
            'peer': '%s:%d' % tuple(session.peer[:2]),
            'queue_id': 'Q%d' % n,
        }
        with open(base + '.tmp', 'w') as f:
            json.dump(meta, f)
        os.rename(base + '.tmp', base + '.json')
        return '250 2.0.0 Ok: queued as Q%d' % n


class Authenticator:
    def __init__(self, user, password):
        self.user = user.encode()
        self.password = password.encode()

    def __call__(self, server, session, envelope, mechanism, auth_data):
        if (isinstance(auth_data, LoginPassword)
                and auth_data.login == self.user
                and auth_data.password == self.password):
            return AuthResult(success=True, auth_data=auth_data.login)
        return AuthResult(success=False, handled=False)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--port', type=int, required=True)
    ap.add_argument('--dir', required=True)
    ap.add_argument('--auth')
    ap.add_argument('--tls', nargs=2, metavar=('CERT', 'KEY'))
    a = ap.parse_args()

    sink = Sink(a.dir)
    kw = {'hostname': 'sink.test', 'auth_require_tls': False}

    if a.auth:
        user, password = a.auth.split(':', 1)
        kw['authenticator'] = Authenticator(user, password)
        kw['auth_required'] = True

    if a.tls:
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.load_cert_chain(a.tls[0], a.tls[1])
        kw['tls_context'] = ctx
        kw['require_starttls'] = True

    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    server = loop.run_until_complete(
        loop.create_server(lambda: SMTP(sink, loop=loop, **kw),
                           '127.0.0.1', a.port))
    print('ready', flush=True)
    try:
        loop.run_forever()
    finally:
        server.close()


if __name__ == '__main__':
    sys.exit(main())
