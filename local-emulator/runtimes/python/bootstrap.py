"""The emulator's bootstrap for python3.x functions.

Runs awslambdaric (AWS's Lambda runtime interface client for Python) as
`python -m awslambdaric HANDLER` would, from the function's task root.
Before that, when the emulator serves TLS, it makes the API's execute-api
host name (`{apiId}.execute-api.{region}.amazonaws.com`, port 443) lead to
the emulator's port, so that code written for AWS reaches `@connections`
unmodified. The function's environment is not touched: the host and port
come as arguments.

Usage: python bootstrap.py [--execute-api HOST PORT] HANDLER
"""

import os
import runpy
import socket
import sys


def route_execute_api(host, port):
    host = host.lower().rstrip(".")
    real = socket.getaddrinfo

    def getaddrinfo(name, service, *args, **kwargs):
        text = name.decode() if isinstance(name, bytes) else name
        if (
            isinstance(text, str)
            and text.lower().rstrip(".") == host
            and str(service) in ("443", "https")
        ):
            return real("127.0.0.1", port, *args, **kwargs)
        return real(name, service, *args, **kwargs)

    socket.getaddrinfo = getaddrinfo


def main():
    args = sys.argv[1:]
    if len(args) >= 3 and args[0] == "--execute-api":
        route_execute_api(args[1], int(args[2]))
        args = args[3:]
    # As with `python -m`, the working directory (the task root) comes first
    # on the path, so the function's own packages win over PYTHONPATH's.
    sys.path[0] = os.getcwd()
    sys.argv = ["awslambdaric"] + args
    runpy.run_module("awslambdaric", run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main()
