# Copyright: provision contributors
# Apache License 2.0 (see https://www.apache.org/licenses/LICENSE-2.0)
"""What the provision.elasticsearch modules share: the options, opening the stack (a path or an
inline mapping), connecting, and turning the ``provisioning`` library's reports into task results.

The modules call the library in the module's own Python (``ansible_python_interpreter``): nothing
here starts a subprocess. Functions here take plain values and return plain data, or raise
:class:`TaskFailed` (message and partial result); only :func:`new_module` and :func:`exit_with`, which
every module uses to start and to end its task, talk to ``AnsibleModule``.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import tempfile
import traceback
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ansible.module_utils.basic import AnsibleModule, missing_required_lib

try:
    import yaml

    import provisioning
    from provisioning.resources.diff import STATE_PATH
except ImportError:
    HAS_PROVISIONING = False
    PROVISIONING_IMPORT_ERROR: str | None = traceback.format_exc()
else:
    HAS_PROVISIONING = True
    PROVISIONING_IMPORT_ERROR = None

PROVISIONING_HINT = (
    "The modules of provision.elasticsearch call the provisioning library in the Python that runs the "
    "module: set ansible_python_interpreter to a Python where provisioning is installed (for example "
    "-e ansible_python_interpreter=$(command -v python) with the project's virtual environment active)."
)

STACK_ARGUMENT_SPEC: dict[str, dict[str, Any]] = {
    "stack": {"type": "raw", "required": True},
    "base_dir": {"type": "path"},
}

CONNECTION_ARGUMENT_SPEC: dict[str, dict[str, Any]] = {
    "es_url": {"type": "str"},
    "api_key": {"type": "str", "no_log": True},
    "username": {"type": "str"},
    "password": {"type": "str", "no_log": True},
    "ca_certs": {"type": "path"},
    "insecure": {"type": "bool", "default": False},
}

CONNECTION_MUTUALLY_EXCLUSIVE = [["api_key", "username"]]
CONNECTION_REQUIRED_TOGETHER = [["username", "password"]]

INLINE_NAME = "<inline stack>"


class TaskFailed(Exception):
    """The task fails with ``msg``; ``result`` is what is known so far (plan, reports)."""

    def __init__(self, msg: str, result: dict[str, Any] | None = None) -> None:
        super().__init__(msg)
        self.msg = msg
        self.result = result or {}


class WarningCollector(logging.Handler):
    """Keeps the library's warnings so the module can hand them to Ansible (``module.warn``)."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


@contextlib.contextmanager
def library_calls() -> Iterator[WarningCollector]:
    """Around every library call: stdout belongs to the module's JSON result, so anything printed
    goes to stderr; the library's warnings are collected instead of lost."""
    collector = WarningCollector()
    logger = logging.getLogger("provisioning")
    logger.addHandler(collector)
    # Ansible replaces sys.intern in the module's process with a callable object (so that str
    # subclasses are accepted on Python < 3.12); torch registers a polyfill for sys.intern when it
    # is imported and refuses anything but a function ("substitute_in_graph expects a function").
    # The library is handed the original for the duration of its calls.
    patched = sys.intern
    original = getattr(patched, "unpatched_implementation", None)
    if original is not None:
        sys.intern = original
    try:
        with contextlib.redirect_stdout(sys.stderr):
            yield collector
    finally:
        logger.removeHandler(collector)
        if original is not None:
            sys.intern = patched


@contextlib.contextmanager
def opened_stack(stack: Any, base_dir: str | None) -> Iterator[provisioning.Stack]:
    """The loaded stack. ``stack`` is a path (relative paths against ``base_dir``) or a mapping,
    which is written to a temporary file in ``base_dir`` (so its relative paths resolve there) and
    removed afterwards. ``base_dir`` defaults to the module's working directory."""
    directory = Path(base_dir).expanduser().resolve() if base_dir else Path.cwd()
    if isinstance(stack, str):
        given = Path(stack).expanduser()
        path = given if given.is_absolute() else directory / given
        if not path.is_file():
            where = "" if given.is_absolute() else f" (relative to {directory})"
            raise TaskFailed(f"stack file not found: {path}{where}; the path is read on the managed host")
        yield _load(path, None)
        return
    if not isinstance(stack, dict):
        raise TaskFailed(
            f"stack must be the path of a stack file or a mapping (an inline stack), not {type(stack).__name__}"
        )
    if not directory.is_dir():
        raise TaskFailed(f"base_dir {directory} is not a directory")
    try:
        handle, name = tempfile.mkstemp(prefix=".provision-inline-", suffix=".yaml", dir=directory)
    except OSError as exc:
        raise TaskFailed(
            f"cannot write the inline stack next to its relative paths, in {directory}: {exc.strerror or exc}; "
            "set base_dir to a writable directory, or pass the stack as a file"
        ) from None
    path = Path(name)
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            yaml.safe_dump(stack, out, sort_keys=False, allow_unicode=True)
        yield _load(path, str(path))
    finally:
        path.unlink(missing_ok=True)


def _load(path: Path, inline_path: str | None) -> provisioning.Stack:
    try:
        with library_calls():
            return provisioning.load_stack(path)
    except provisioning.SpecError as exc:
        issues = [str(issue) for issue in exc.issues]
        message = str(exc)
        if inline_path is not None:
            issues = [i.replace(inline_path, INLINE_NAME) for i in issues]
            message = message.replace(inline_path, INLINE_NAME)
        raise TaskFailed(message, {"issues": issues}) from None


def connect(stack: provisioning.Stack, params: dict[str, Any]) -> provisioning.Cluster:
    """The cluster: the task's connection options over ES_* variables over the stack's ``cluster:``."""
    try:
        return provisioning.connect(
            stack,
            url=params.get("es_url"),
            api_key=params.get("api_key"),
            username=params.get("username"),
            password=params.get("password"),
            ca_certs=params.get("ca_certs"),
            insecure=True if params.get("insecure") else None,
        )
    except provisioning.ProvisionError as exc:
        raise TaskFailed(str(exc)) from None


# -- results -------------------------------------------------------------------------------------
def _yaml(value: Any) -> str:
    if value in (None, {}, []):
        return ""
    return str(
        yaml.safe_dump(value, sort_keys=False, default_flow_style=False, allow_unicode=True, width=100)
    )


def _sides(change: provisioning.Change) -> tuple[Any, Any]:
    """Before and after of one change, from its field-level diff where it has one."""
    if change.action == "create":
        return None, change.after or {e.path: e.after for e in change.diff}
    if change.action == "delete":
        return change.before or {e.path: e.before for e in change.diff}, None
    if change.diff:
        before = {e.path: e.before for e in change.diff if e.op != "add"}
        after = {e.path: e.after for e in change.diff if e.op != "remove"}
        return before, after
    return change.before, change.after


def plan_diff(plan: provisioning.Plan) -> list[dict[str, str]]:
    """Ansible's diff (``--diff``): one before/after pair per change of the plan."""
    out = []
    for change in plan.changes:
        before, after = _sides(change)
        out.append(
            {
                "before_header": f"{change.address} (cluster)",
                "after_header": f"{change.address} ({change.action}: {change.reason})",
                "before": _yaml(before),
                "after": _yaml(after),
            }
        )
    return out


def _writes(results: list[Any]) -> int:
    """Changes that wrote something (applied or failed part way), not counting a wait for a state."""
    count = 0
    for result in results:
        waits = result.change.action == "update" and all(d.path == STATE_PATH for d in result.change.diff)
        if result.status in ("applied", "failed") and not (waits and result.change.diff):
            count += 1
    return count


def _refused(plan: provisioning.Plan) -> str:
    return "refusing to apply; nothing was changed:\n" + "\n".join(f"  {p}" for p in plan.refusals())


def _stopped(report: provisioning.ConvergeReport) -> str:
    stage = report.stopped_at
    if report.error:
        return f"stopped at {stage}: {report.error}"
    if stage == "verify" and report.verify is not None:
        failed = []
        for res in report.verify.results:
            if not res.passed:
                why = res.error or "; ".join(c.message for c in res.checks if not c.passed)
                failed.append(f"{res.name}: {why}")
        return "smoke tests failed: " + "; ".join(failed)
    return f"stopped at {stage}"


def present(
    stack: provisioning.Stack,
    cluster: provisioning.Cluster,
    params: dict[str, Any],
    check_mode: bool,
    diff: bool,
) -> dict[str, Any]:
    """``state: present``: in check mode the plan (changed when it has changes; nothing written),
    otherwise the whole converge (plan, apply, ingest, smoke tests)."""
    adopt = tuple(params.get("adopt") or ())
    include_data = bool(params.get("include_data"))
    if check_mode:
        the_plan = provisioning.plan(stack, cluster, adopt=adopt, include_data=include_data)
        result: dict[str, Any] = {"changed": the_plan.has_changes, "plan": the_plan.to_json()}
        if diff:
            result["diff"] = plan_diff(the_plan)
        if not the_plan.applicable:
            raise TaskFailed(_refused(the_plan), result)
        return result
    options = provisioning.ConvergeOptions(
        adopt=adopt,
        include_data=include_data,
        skip_ingest=bool(params.get("skip_ingest")),
        skip_verify=bool(params.get("skip_verify")),
    )
    report = provisioning.converge(stack, cluster, options)
    writes = _writes(report.apply.results) if report.apply is not None else 0
    indexed = 0
    if report.ingest is not None:
        indexed = sum(job.indexed + job.pruned for job in report.ingest.jobs)
    result = {"changed": bool(writes or indexed), "plan": report.plan.to_json()}
    document = report.to_json()
    for stage in ("apply", "ingest", "verify"):
        value = document.get(stage)
        if value is not None:
            result[stage] = value
    if diff:
        result["diff"] = plan_diff(report.plan)
    if not report.ok:
        raise TaskFailed(_stopped(report), result)
    return result


def absent(
    stack: provisioning.Stack,
    cluster: provisioning.Cluster,
    params: dict[str, Any],
    check_mode: bool,
    diff: bool,
) -> dict[str, Any]:
    """``state: absent``: delete what the stack manages (reverse order); in check mode the plan."""
    include_data = bool(params.get("include_data"))
    if check_mode:
        the_plan = provisioning.destroy_plan(stack, cluster, include_data=include_data)
        result: dict[str, Any] = {"changed": bool(the_plan.changes), "plan": the_plan.to_json()}
        if diff:
            result["diff"] = plan_diff(the_plan)
        if not the_plan.applicable:
            raise TaskFailed(_refused(the_plan), result)
        return result
    report = provisioning.destroy(stack, cluster, provisioning.DestroyOptions(include_data=include_data))
    document = report.to_json()
    writes = _writes(report.apply.results) if report.apply is not None else 0
    result = {"changed": bool(writes), "plan": document["plan"]}
    if "apply" in document:
        result["apply"] = document["apply"]
    if diff:
        result["diff"] = plan_diff(report.plan)
    if not report.ok:
        failed = report.error or "; ".join(
            f"{r.change.address}: {r.error}" for r in (report.apply.failed if report.apply else [])
        )
        raise TaskFailed(f"destroy failed: {failed}", result)
    return result


def stack_status(stack: provisioning.Stack, cluster: provisioning.Cluster) -> dict[str, Any]:
    """``stack_info``: every declared resource's status, with deployments and doc counts picked out."""
    report = provisioning.status(stack, cluster)
    resources = report.resources
    return {
        "changed": False,
        "stack": report.stack,
        "cluster": report.cluster,
        "converged": report.converged,
        "resources": [r.to_json() for r in resources],
        "drifted": [f"{r.kind}/{r.name}" for r in resources if r.drifted or not r.present or not r.managed],
        "deployments": {r.name: r.details for r in resources if r.kind == "deployment"},
        "doc_counts": {r.name: r.details.get("docs") for r in resources if r.kind == "index" and r.present},
    }


def run(params: dict[str, Any], action: Any) -> dict[str, Any]:
    """Open the stack, connect, run ``action(stack, cluster)``; the library's errors become TaskFailed."""
    with opened_stack(params["stack"], params.get("base_dir")) as stack:
        cluster = connect(stack, params)
        try:
            with library_calls() as warnings:
                result: dict[str, Any] = action(stack, cluster)
        except provisioning.ProvisionError as exc:
            raise TaskFailed(str(exc)) from None
        finally:
            cluster.close()
        if warnings.messages:
            result["warnings"] = warnings.messages
        return result


def new_module(argument_spec: dict[str, dict[str, Any]]) -> AnsibleModule:
    """The module's ``AnsibleModule`` (check mode supported, the connection options' constraints);
    the task fails at once, with the way out, when ``provisioning`` cannot be imported."""
    module = AnsibleModule(
        argument_spec=argument_spec,
        mutually_exclusive=CONNECTION_MUTUALLY_EXCLUSIVE,
        required_together=CONNECTION_REQUIRED_TOGETHER,
        supports_check_mode=True,
    )
    if not HAS_PROVISIONING:
        module.fail_json(
            msg=f"{missing_required_lib('provisioning')} {PROVISIONING_HINT}",
            exception=PROVISIONING_IMPORT_ERROR,
        )
    return module


def exit_with(module: AnsibleModule, action: Any) -> None:
    """:func:`run` ``action`` with the module's parameters and end the task: ``exit_json`` with the
    result and the library's warnings as Ansible warnings, or ``fail_json`` with the located message."""
    try:
        result = run(module.params, action)
    except TaskFailed as exc:
        module.fail_json(msg=exc.msg, **exc.result)
    for warning in result.pop("warnings", []):
        module.warn(warning)
    module.exit_json(**result)
