"""One deployed edgefill stack as CloudFormation describes it: status, outputs, parameters.

Commands that need more than the queue URLs read the stack here: ``status`` (the
dashboard), ``doctor``, ``prewarm`` (its allowed hosts), the size lookups of ``estimate``
and the caps (the bucket), ``invalidate`` (the distribution) and ``check`` (the bucket). A
missing stack or a refused call becomes an ``OperatorError`` naming the stack."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from edgefill.operations import OperatorError


@dataclass(frozen=True, slots=True)
class StackInfo:
    name: str
    status: str
    outputs: dict[str, str] = field(default_factory=dict)
    parameters: dict[str, str] = field(default_factory=dict)

    def output(self, key: str) -> str | None:
        value = self.outputs.get(key)
        return value or None


def read_stack(cloudformation: Any, name: str) -> StackInfo:
    """The stack ``name``; ``OperatorError`` when it does not exist or cannot be read."""
    from botocore.exceptions import ClientError, NoCredentialsError

    try:
        stacks = cloudformation.describe_stacks(StackName=name)["Stacks"]
    except NoCredentialsError:
        raise OperatorError("no AWS credentials found to read the stack") from None
    except ClientError as error:
        message = error.response.get("Error", {}).get("Message", str(error))
        if "does not exist" in message:
            raise OperatorError(f"stack {name!r} not found in this account and region") from None
        raise OperatorError(f"cannot read stack {name!r}: {message}") from None
    if not stacks:
        raise OperatorError(f"stack {name!r} not found in this account and region")
    stack = stacks[0]
    return StackInfo(
        name=str(stack.get("StackName", name)),
        status=str(stack.get("StackStatus", "")),
        outputs={o["OutputKey"]: o.get("OutputValue", "") for o in stack.get("Outputs", [])},
        parameters={
            p["ParameterKey"]: p.get("ResolvedValue", p.get("ParameterValue", ""))
            for p in stack.get("Parameters", [])
        },
    )
