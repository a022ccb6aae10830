"""edgefill operator tooling: the ``edgefill`` CLI and the local lab."""
