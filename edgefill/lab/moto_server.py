"""One moto server as the lab runs it, whichever process runs it: ``MotoProcess``'s own
child (``edgefill/lab/aws.py``) or a child forked by the test suite's zygote
(``edgefill/lab/moto_zygote.py``)."""

from __future__ import annotations

import logging
import signal
import socket
from typing import Any


def prepare() -> None:
    """What a process does once before it serves moto: leave Ctrl-C to the lab (which stops
    its pollers before moto), tune moto (``moto_tuning.py``), keep werkzeug quiet."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    from edgefill.lab.moto_tuning import tune_moto

    tune_moto()
    logging.getLogger("werkzeug").setLevel(logging.ERROR)


def start(host: str) -> Any:
    """A started ``ThreadedMotoServer`` on a free port of ``host``; ``RuntimeError`` naming
    the host when this machine cannot listen there (moto's own ``start()`` would wait for
    ever for a server thread that failed to bind)."""
    from moto.server import ThreadedMotoServer

    try:
        socket.create_server((host, 0)).close()
    except OSError as error:
        raise RuntimeError(f"cannot listen on {host!r}: {error}") from None
    server = ThreadedMotoServer(ip_address=host, port=0, verbose=False)
    server.start()
    return server
