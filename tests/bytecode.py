"""Compile, once, the code the suite's processes import at run time but its collection does
not: moto's server with the CloudFormation it imports (nearly every moto service), and
cfn-lint with the SAM translator (sympy, networkx, pydantic). ``make venv`` runs it beside
the two collections, under ``make test``'s bytecode prefix.

Without it a first ``make test`` compiled them in the suite's own processes: cfn-lint's
1 250 modules in the worker of the template tests, and moto's in every moto child that
started before another had written them, often several at once. (Measured once, with that
part of the bytecode prefix removed: 316 s of CPU instead of 279 s; the machine's speed
varied by up to two times within the hour, so that figure is an indication, not a
measurement. See docs/BENCHMARKS.md, "The test suite's time".)"""

from __future__ import annotations


def main() -> None:
    import moto.cloudformation  # noqa: F401 - imported to be compiled
    import moto.server  # noqa: F401
    import samtranslator.translator.transform  # noqa: F401
    from cfnlint.api import lint
    from cfnlint.config import ManualArgs

    from edgefill.lab.moto_tuning import tune_moto

    tune_moto()  # what the lab's moto child runs before it serves (edgefill/lab/aws.py)
    # A lint loads cfn-lint's rules, which a bare import does not.
    lint("Resources: {Q: {Type: AWS::SQS::Queue}}", config=ManualArgs(regions=["us-east-1"]))


if __name__ == "__main__":
    main()
