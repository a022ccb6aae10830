"""One module per command group of the ``edgefill`` CLI.

Each module exposes ``register(commands)``, which adds its sub-commands to the top-level
sub-parser and sets ``run`` (``args -> exit code``) on each. ``edgefill.cli`` lists the
modules in ``COMMAND_GROUPS``; a new group is a new module plus one entry in that list.
Command modules print only through ``edgefill.console`` and never import ``edgefill.cli``.
"""
