"""One verified copy of an origin object into the bucket (``copy.py``), knowing only
``shared/`` and a progress object: how it is cut into parts (``plan.py``), uploaded in
bounded memory (``multipart.py``), what may be stored (``storable.py``), checked
(``integrity.py``), and resumed across invocations (``checkpoint.py``, ``resume.py``,
``md5_state.py``, ``admission.py``, ``progress.py``)."""
