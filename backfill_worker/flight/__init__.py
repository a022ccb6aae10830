"""One key, one worker, across invocations: the lease (``lease.py``), the handover to a
continuation (``continuation.py``), and the leased copy that fill and refresh both run
(``leased_copy.py``), with how a record ends (``outcome.py``)."""
