"""One module per command group of the ``edgefill`` CLI.

Each module exposes ``register(commands)``, which adds its sub-commands to the top-level
sub-parser and sets ``run`` (``args -> exit code``) on each. ``edgefill.cli`` lists the
modules in ``COMMAND_GROUPS``; a new group is a new module plus one entry in that list.
Command modules print only through ``edgefill.console`` and never import ``edgefill.cli``.

Every start of the CLI imports every one of these modules to build the parser (about 3 ms
of argparse); issue 23 keeps that start near the interpreter's own. So a command module
imports at its top only what registering needs (argparse, ``values``, the flag helpers,
``console``, ``operations``); whatever only running needs (boto3 and botocore, rich, the
message and config models, the warm engine, ``edgefill.doctor``, dnspython) is imported in
the function that uses it. ``tests/unit/test_cli_lazy_imports.py`` fails when one of them
is loaded by ``--help``, a command's ``--help``, a usage error or a completion.
"""
