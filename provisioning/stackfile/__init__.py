"""stack.yaml: reading, validating and cross-checking it."""

from provisioning.errors import SpecError, SpecIssue
from provisioning.stackfile.load import load_stack
from provisioning.stackfile.schema import StackSpec
from provisioning.stackfile.stack import Stack

__all__ = ["SpecError", "SpecIssue", "Stack", "StackSpec", "load_stack"]
