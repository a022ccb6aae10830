"""Copies that follow the origin: how long a copy stays fresh (``lifetime.py``), when it
is due (``due_index.py``), the scheduled sweep that queues due copies (``sweep.py``), a
``mode: "refresh"`` record (``refresh.py``) and its decision (``revalidation.py``), what
freshness adds to every new copy (``stamp.py``), and the invalidations after a batch
(``invalidation.py``)."""
