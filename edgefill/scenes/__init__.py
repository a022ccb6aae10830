"""Demo scenes: one module per scene, each a function taking the ``Demo``."""
