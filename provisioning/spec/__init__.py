"""stack.yaml: reading, validating and cross-checking it."""

from provisioning.errors import SpecError, SpecIssue
from provisioning.spec.load import load_stack
from provisioning.spec.model import StackSpec
from provisioning.spec.stack import Stack

__all__ = ["SpecError", "SpecIssue", "Stack", "StackSpec", "load_stack"]
