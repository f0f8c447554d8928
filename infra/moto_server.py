"""moto's server with DynamoDB's per-request atomicity.

DynamoDB applies every request atomically: a TransactWriteItems is all or
nothing and GetItem is serialisable with it; a conditional write checks and
writes as one step. moto's threaded server runs requests concurrently
without a lock, so under concurrent clients it can show a transaction half
applied, or let two conditional writes both pass. Roomcast's concurrency
tests check Roomcast's logic against DynamoDB's guarantees, so this launcher
serialises request handling (connections are still accepted concurrently).

Usage: python moto_server.py HOST PORT
"""

import signal
import sys
import threading

from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)
from werkzeug.serving import run_simple


def main() -> None:
    host, port = sys.argv[1], int(sys.argv[2])
    app = DomainDispatcherApplication(create_backend_app)
    lock = threading.Lock()

    def atomic(environ, start_response):
        # The whole response is produced under the lock: backends may
        # compute lazily while the body is iterated.
        with lock:
            return [b"".join(app(environ, start_response))]

    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    run_simple(host, port, atomic, threaded=True, request_handler=MotoRequestHandler)


if __name__ == "__main__":
    main()
