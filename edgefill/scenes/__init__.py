"""Demo scenes, one module each, each a function taking the ``Demo``."""
