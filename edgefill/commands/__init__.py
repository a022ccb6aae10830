"""One module per command group of the ``edgefill`` CLI.

Each module exposes ``register(commands)``, which adds its sub-commands to the top-level
sub-parser and sets ``run`` (``args -> exit code``) on each. ``edgefill.cli`` lists the
modules in ``COMMAND_GROUPS`` and each command's module in ``GROUP_OF``; a new group is a
new module plus its entries there.
Command modules print only through ``edgefill.console`` and never import ``edgefill.cli``.

``edgefill COMMAND …`` imports COMMAND's module to build its parser, ``edgefill --help``
all of them; issue 23 keeps that start near the interpreter's own. So a command module
imports at its top only what registering needs (argparse, ``values``, the flag helpers,
``console``, ``operations``); whatever only running needs (boto3 and botocore, rich, the
message and config models, the warm engine, ``edgefill.doctor``, dnspython) is imported in
the function that uses it. ``tests/unit/test_cli_lazy_imports.py`` fails when one of them
is loaded by ``--help``, a command's ``--help``, a usage error or a completion.
"""
