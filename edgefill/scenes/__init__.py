"""Demo scenes, one module each, each a function taking a ``Stage`` (``stage.py``): the
``Demo`` that runs them, seen through the few things a scene uses."""
