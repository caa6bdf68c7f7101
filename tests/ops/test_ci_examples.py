"""The CI/CD examples (examples/ci) run against the sandbox as the CI services would run them.

Each file is parsed; the steps (GitHub Actions) or jobs (GitLab CI) that an event selects and that
call ``provision`` are run with the file's own shell settings and variables, the secrets supplied
as the secret store would. The sequence: a pull request on an empty cluster (validate, plan: exit
2, the Markdown summary lists the creates, nothing written), the merge (apply), and a pull request
on the converged cluster (plan: no changes). Steps that install packages or talk to GitHub or GitLab
are not run; what they need (the Markdown file) is checked instead.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from es_sandbox import SandboxServer
from tests.conftest import REPO
from tests.ops.workspace import quickstart_workspace, shell_env

CI = REPO / "examples" / "ci"
PROVISION_COMMAND = re.compile(r"(^|[\s;&|(])provision\s+(validate|plan|apply|destroy|status|show)\b", re.M)
EXPRESSION = re.compile(r"\$\{\{\s*([^}]*?)\s*\}\}")

pytestmark = pytest.mark.slow


def _calls_provision(script: str) -> bool:
    return bool(PROVISION_COMMAND.search(script))


def _run(script: str, shell: list[str], cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*shell, script], cwd=cwd, env=env, capture_output=True, text=True, timeout=600, check=False
    )


# -- GitHub Actions ------------------------------------------------------------------------------
def _github_env(block: dict[str, Any] | None, secrets: dict[str, str]) -> dict[str, str]:
    """A workflow ``env:`` with its ``${{ secrets.X }}`` expressions resolved; any other expression
    must not reach a step the test runs."""
    out = {}
    for key, value in (block or {}).items():
        text = str(value)
        for expression in EXPRESSION.findall(text):
            assert expression.startswith("secrets."), (
                f"{key}: only secrets may be interpolated, not {expression}"
            )
            text = text.replace(f"${{{{ {expression} }}}}", secrets[expression.removeprefix("secrets.")])
        out[key] = text
    return out


def _github_job(
    workflow: dict[str, Any], name: str, workspace: Path, secrets: dict[str, str], outputs: Path
) -> list[str]:
    """Run the provision steps of job ``name`` as a runner would; returns the names of the steps run."""
    job = workflow["jobs"][name]
    shell_spec = job.get("defaults", workflow.get("defaults", {})).get("run", {}).get("shell")
    assert shell_spec == "bash", "steps must run in bash (-eo pipefail)"
    env = {
        **_github_env(workflow.get("env"), secrets),
        **_github_env(job.get("env"), secrets),
        "GITHUB_OUTPUT": str(outputs / "output"),
        "GITHUB_STEP_SUMMARY": str(outputs / "summary.md"),
    }
    ran = []
    for step in job["steps"]:
        script = step.get("run")
        if script is None or not _calls_provision(script):
            continue
        assert "${{" not in script, f"step {step.get('name')}: expressions belong in env, not in the script"
        step_env = shell_env(**env, **_github_env(step.get("env"), secrets))
        done = _run(script, ["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c"], workspace, step_env)
        assert done.returncode == 0, f"step {step.get('name')!r} failed:\n{done.stdout}\n{done.stderr}"
        ran.append(str(step.get("name")))
    return ran


def test_github_actions_workflow(fresh_sandbox: SandboxServer, tmp_path: Path) -> None:
    workflow = yaml.safe_load((CI / "github-actions.yml").read_text())
    events = workflow[True] if True in workflow else workflow["on"]  # YAML 1.1 reads `on` as true
    assert "pull_request" in events and events["push"]["branches"] == ["main"]
    assert "pull_request" in workflow["jobs"]["plan"]["if"]
    assert "push" in workflow["jobs"]["apply"]["if"] and "refs/heads/main" in workflow["jobs"]["apply"]["if"]
    for job in workflow["jobs"].values():
        assert job["env"]["ES_URL"] == "${{ secrets.ES_URL }}"
        assert job["env"]["ES_API_KEY"] == "${{ secrets.ES_API_KEY }}"

    workspace = quickstart_workspace(
        tmp_path / "repo"
    ).parent  # stands for the repository root (stack.yaml at the top)
    secrets = {"ES_URL": fresh_sandbox.url, "ES_API_KEY": ""}
    log = fresh_sandbox.state.log

    # A pull request on an empty cluster: changes to review, shown as Markdown; nothing written.
    first = tmp_path / "pr-1"
    first.mkdir()
    log.clear()
    ran = _github_job(workflow, "plan", workspace, secrets, first)
    assert ran == ["Validate", "Plan"]
    assert (first / "output").read_text().strip() == "exitcode=2"
    summary = (first / "summary.md").read_text()
    assert "### provision plan: stack `quickstart`" in summary
    assert "| `+` | `index/quickstart-images` | create |" in summary
    assert (workspace / "plan.md").read_text() == summary
    assert log.writes() == []

    # The merge: apply and status.
    merged = tmp_path / "push"
    merged.mkdir()
    assert _github_job(workflow, "apply", workspace, secrets, merged) == ["Apply", "Status"]
    assert yaml.safe_load((workspace / "status.json").read_text())["converged"] is True

    # The next pull request: nothing to change.
    second = tmp_path / "pr-2"
    second.mkdir()
    log.clear()
    _github_job(workflow, "plan", workspace, secrets, second)
    assert (second / "output").read_text().strip() == "exitcode=0"
    assert "**No changes.**" in (second / "summary.md").read_text()
    assert log.writes() == []


def test_github_actions_plan_step_fails_when_plan_fails(tmp_path: Path) -> None:
    """Exit 1 of plan (here: the cluster cannot be reached) fails the check; exit 2 does not."""
    workflow = yaml.safe_load((CI / "github-actions.yml").read_text())
    workspace = quickstart_workspace(tmp_path / "repo").parent
    step = next(s for s in workflow["jobs"]["plan"]["steps"] if s.get("name") == "Plan")
    env = shell_env(
        STACK="stack.yaml",
        ES_URL="http://127.0.0.1:9",
        GITHUB_OUTPUT=str(tmp_path / "output"),
        GITHUB_STEP_SUMMARY=str(tmp_path / "summary.md"),
    )
    done = _run(step["run"], ["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c"], workspace, env)
    assert done.returncode != 0
    assert (tmp_path / "output").read_text().strip() == "exitcode=1"
    assert "cannot reach Elasticsearch" in done.stderr


# -- GitLab CI -----------------------------------------------------------------------------------
def _gitlab_condition(condition: str, variables: dict[str, str]) -> bool:
    """GitLab's ``rules: if`` for the forms the example uses: ``$A == "x"``, ``$A == $B``, ``$A``, with ``&&``."""

    def value(term: str) -> str:
        term = term.strip()
        if term.startswith("$"):
            return variables.get(term[1:], "")
        return term.strip("\"'")

    for clause in condition.split("&&"):
        if "==" in clause:
            left, right = clause.split("==")
            if value(left) != value(right):
                return False
        elif not value(clause):
            return False
    return True


def _gitlab_pipeline(config: dict[str, Any], workspace: Path, variables: dict[str, str]) -> list[str]:
    """Run, stage by stage, the jobs whose rules match ``variables`` and whose script calls provision."""
    ran = []
    for stage in config["stages"]:
        for name, job in config.items():
            if not isinstance(job, dict) or job.get("stage") != stage:
                continue
            if not any(_gitlab_condition(rule["if"], variables) for rule in job.get("rules", [])):
                continue
            script = "\n".join(job["script"])
            if not _calls_provision(script):
                continue
            env = shell_env(**{k: str(v) for k, v in config.get("variables", {}).items()}, **variables)
            done = _run(script, ["bash", "-eo", "pipefail", "-c"], workspace, env)
            assert done.returncode == 0, f"job {name} failed:\n{done.stdout}\n{done.stderr}"
            ran.append(name)
    return ran


def test_gitlab_ci_pipeline(fresh_sandbox: SandboxServer, tmp_path: Path) -> None:
    config = yaml.safe_load((CI / "gitlab-ci.yml").read_text())
    text = (CI / "gitlab-ci.yml").read_text()
    assert "ES_API_KEY:" not in text and "ES_URL:" not in text, "secrets belong in CI/CD variables"
    workspace = quickstart_workspace(tmp_path / "repo").parent
    secrets = {"ES_URL": fresh_sandbox.url, "CI_DEFAULT_BRANCH": "main", "CI_PROJECT_DIR": str(workspace)}
    merge_request = {**secrets, "CI_PIPELINE_SOURCE": "merge_request_event", "CI_COMMIT_BRANCH": ""}
    default_branch = {**secrets, "CI_PIPELINE_SOURCE": "push", "CI_COMMIT_BRANCH": "main"}
    log = fresh_sandbox.state.log

    log.clear()
    assert _gitlab_pipeline(config, workspace, merge_request) == ["validate", "plan"]
    markdown = (workspace / "plan.md").read_text()
    assert "**7 to create, 1 to update, 0 to replace, 0 to delete**" in markdown
    assert "<details><summary>Field-level changes</summary>" in markdown
    assert log.writes() == []
    assert config["plan-note"]["needs"] == ["plan"] and "plan.md" in config["plan-note"]["script"][-1]

    assert _gitlab_pipeline(config, workspace, default_branch) == ["validate", "apply"]
    assert yaml.safe_load((workspace / "status.json").read_text())["converged"] is True

    log.clear()
    assert _gitlab_pipeline(config, workspace, merge_request) == ["validate", "plan"]
    assert "**No changes.**" in (workspace / "plan.md").read_text()
    assert log.writes() == []
