"""``mode: "fill"``: copy a missing object (``fill.py``), remember the paths the origin
does not have (``missing.py``), and queue a copied playlist's tree (``expand.py``)."""
