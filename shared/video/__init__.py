"""The parts of the manifest parser (``shared/manifests.py`` is its front door)."""
