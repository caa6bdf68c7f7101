"""The collection's documentation: ``ansible-doc`` renders both modules and the role, and what the
documentation says matches what the modules accept.

``ansible-test sanity`` (whose validate-modules test does the same and more) needs its own
requirements installed from PyPI into virtual environments, or containers; it cannot run offline
here. These tests cover the part that matters most: the documented options are exactly the
argument spec (names, types, defaults, choices, elements, required), secrets are ``no_log``, and
DOCUMENTATION, EXAMPLES and RETURN are valid YAML whose examples use only documented options.
"""

from __future__ import annotations

import ast
import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.ansible.runner import COLLECTION, ansible_doc
from tests.conftest import REPO

MODULES = ["stack", "stack_info"]


def _docstrings(module: str) -> dict[str, str]:
    source = (COLLECTION / "plugins" / "modules" / f"{module}.py").read_text()
    found = {}
    for node in ast.parse(source).body:
        if isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Name):
            name = node.targets[0].id
            if name in ("DOCUMENTATION", "EXAMPLES", "RETURN") and isinstance(node.value, ast.Constant):
                found[name] = str(node.value.value)
    return found


def _argument_spec(module: str) -> dict[str, dict[str, Any]]:
    """The module's argument spec, read in a separate Python: importing Ansible's module_utils
    patches ``sys.intern`` process-wide, which breaks any later import of torch in this one."""
    code = (
        "import json, importlib; "
        f"m = importlib.import_module('ansible_collections.provision.elasticsearch.plugins.modules.{module}'); "
        "print(json.dumps(m.argument_spec()))"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO / "ansible"), str(REPO)])}
    done = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    spec: dict[str, dict[str, Any]] = json.loads(done.stdout)
    return spec


@pytest.mark.parametrize("module", MODULES)
def test_ansible_doc_renders_the_module(module: str, tmp_path: Path) -> None:
    shown = ansible_doc(tmp_path, f"provision.elasticsearch.{module}")
    assert shown.returncode == 0, shown.stdout + shown.stderr
    assert f"provision.elasticsearch.{module}" in shown.stdout
    assert "ERROR" not in shown.stderr and "WARNING" not in shown.stderr, shown.stderr
    text = re.sub(r"\x1b\[[0-9;]*m", "", shown.stdout)  # required options are printed in bold
    options = set(re.findall(r"^(?:[-=]|  ) (\w+)  ", text, re.MULTILINE))  # "= " marks required ones
    assert {
        "stack",
        "base_dir",
        "es_url",
        "api_key",
        "username",
        "password",
        "ca_certs",
        "insecure",
    } <= options


def test_ansible_doc_lists_the_collection_and_renders_the_role(tmp_path: Path) -> None:
    listed = ansible_doc(tmp_path, "--list", "provision.elasticsearch")
    assert listed.returncode == 0, listed.stderr
    assert "provision.elasticsearch.stack " in listed.stdout
    assert "provision.elasticsearch.stack_info " in listed.stdout
    role = ansible_doc(tmp_path, "-t", "role", "provision.elasticsearch.image_search")
    assert role.returncode == 0, role.stderr
    assert "image_search_stack" in role.stdout


@pytest.mark.parametrize("module", MODULES)
def test_documented_options_are_the_argument_spec(module: str, tmp_path: Path) -> None:
    shown = ansible_doc(tmp_path, "--json", f"provision.elasticsearch.{module}")
    assert shown.returncode == 0, shown.stderr
    doc = json.loads(shown.stdout)[f"provision.elasticsearch.{module}"]["doc"]
    documented: dict[str, dict[str, Any]] = doc["options"]
    spec = _argument_spec(module)
    assert sorted(documented) == sorted(spec)
    for name, option in spec.items():
        shown_option = documented[name]
        assert shown_option.get("type", "str") == option.get("type", "str"), name
        assert bool(shown_option.get("required")) == bool(option.get("required")), name
        assert shown_option.get("default") == option.get("default"), name
        assert shown_option.get("choices") == option.get("choices"), name
        assert shown_option.get("elements") == option.get("elements"), name
        assert shown_option.get("description"), f"option {name} has no description"
        secret = any(word in name for word in ("key", "password", "token"))
        assert bool(option.get("no_log")) == secret, f"option {name}: no_log must be set exactly for secrets"
    assert doc["attributes"]["check_mode"]["support"] == "full"
    assert "provisioning" in " ".join(doc["requirements"])


@pytest.mark.parametrize("module", MODULES)
def test_examples_and_return_are_valid_and_use_documented_options(module: str) -> None:
    docs = _docstrings(module)
    assert set(docs) == {"DOCUMENTATION", "EXAMPLES", "RETURN"}
    documentation = yaml.safe_load(docs["DOCUMENTATION"])
    assert documentation["module"] == module
    assert documentation["short_description"] and not documentation["short_description"].endswith(".")
    spec = _argument_spec(module)
    examples = yaml.safe_load(docs["EXAMPLES"])
    assert isinstance(examples, list) and examples
    uses = [
        task[f"provision.elasticsearch.{module}"]
        for task in examples
        if f"provision.elasticsearch.{module}" in task
    ]
    assert uses, "no example uses the module by its fully qualified name"
    for args in uses:
        assert set(args) <= set(spec), set(args) - set(spec)
        assert "stack" in args
    returned = yaml.safe_load(docs["RETURN"])
    for name, value in returned.items():
        assert {"description", "returned", "type"} <= set(value), name
        assert value["type"] in ("str", "bool", "int", "float", "list", "dict", "raw"), name


def test_collection_metadata() -> None:
    galaxy = yaml.safe_load((COLLECTION / "galaxy.yml").read_text())
    assert (galaxy["namespace"], galaxy["name"]) == ("provision", "elasticsearch")
    runtime = yaml.safe_load((COLLECTION / "meta" / "runtime.yml").read_text())
    assert runtime["requires_ansible"].startswith(">=2.19")
    from ansible.release import __version__  # the version only: nothing that patches the interpreter

    assert __version__.startswith("2.19."), "pin ansible-core 2.19.x (the newest line on Python 3.11)"


def test_the_test_process_keeps_the_builtin_sys_intern() -> None:
    """Nothing here may import Ansible's module_utils in-process: it replaces ``sys.intern`` with an
    object, after which torch (imported by later tests) refuses to load."""
    assert type(sys.intern).__name__ == "builtin_function_or_method", type(sys.intern)
