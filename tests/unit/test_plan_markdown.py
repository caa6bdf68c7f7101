"""``provision show``: a saved JSON plan rendered as Markdown for a pull-request comment."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from provisioning.changes import Change, Conflict, Plan
from provisioning.errors import ProvisionError
from provisioning.render import MARKDOWN_LIMIT, render_plan_markdown
from provisioning.resources.diff import DiffEntry


def _plan() -> Plan:
    return Plan(
        stack="photos",
        cluster="https://es.example:9200",
        mode="apply",
        changes=[
            Change(
                "index_template",
                "photos",
                "create",
                "index template does not exist",
                None,
                {"index_patterns": ["photos*"], "priority": 200},
            ),
            Change(
                "deployment",
                "clip",
                "update",
                "allocations change in place (_update)",
                {"number_of_allocations": 1},
                {"number_of_allocations": 2},
                [DiffEntry("number_of_allocations", "change", 1, 2)],
            ),
            Change(
                "index",
                "photos",
                "update",
                "2 field(s) differ | needs care",
                None,
                None,
                [DiffEntry("mappings.properties.vec.dims", "change", 32, 64)],
                blocked="dims of vec change: requires reindex",
            ),
        ],
        conflicts=[
            Conflict("pipeline", "tag", "exists but is not managed by this stack", "adopt it with --adopt")
        ],
        unchanged=["license/trial"],
        errors=["index template photos: Elasticsearch refuses it: mapper_parsing_exception"],
    )


def test_changes_table_refusals_and_field_level_details() -> None:
    text = render_plan_markdown(_plan().to_json())
    assert text.startswith("### provision plan: stack `photos` on https://es.example:9200\n")
    assert "**1 to create, 2 to update, 0 to replace, 0 to delete**; 1 unchanged." in text
    assert "| `+` | `index_template/photos` | create | index template does not exist |" in text
    assert "| `~` | `index/photos` | update | 2 field(s) differ \\| needs care |" in text  # pipes escaped
    assert "> [!CAUTION]" in text
    assert (
        "> - conflict `pipeline/tag`: exists but is not managed by this stack; adopt it with --adopt" in text
    )
    assert "> - blocked `index/photos`: dims of vec change: requires reindex" in text
    assert "> - refused: index template photos: Elasticsearch refuses it" in text
    details = text[text.index("<details>") :]
    assert (
        "#### `index_template/photos` (create)\n\n```diff\n+ index_patterns:\n+ - photos*\n+ priority: 200\n```"
        in details
    )
    assert "- number_of_allocations: 1\n+ number_of_allocations: 2" in details
    assert details.rstrip().endswith("</details>")


def test_no_changes() -> None:
    plan = Plan(stack="photos", cluster="http://localhost:9200", mode="apply", unchanged=["index/photos"])
    text = render_plan_markdown(plan.to_json())
    assert "**No changes.** The cluster matches the stack." in text
    assert "<details>" not in text and "CAUTION" not in text


def test_destroy_plan_and_size_limit() -> None:
    body = {f"field_{i}": "x" * 80 for i in range(30)}
    changes = [Change("index", f"photos-{i}", "delete", "not declared", body, None) for i in range(400)]
    plan = Plan(stack="photos", cluster="http://localhost:9200", mode="destroy", changes=changes)
    text = render_plan_markdown(plan.to_json())
    assert text.startswith("### provision destroy plan: stack `photos`")
    assert len(text) <= MARKDOWN_LIMIT
    assert "more changes: see the JSON plan)" in text
    assert "| `-` | `index/photos-399` | delete | not declared |" in text  # the table lists every change


def test_a_document_that_is_not_a_plan_is_refused() -> None:
    with pytest.raises(ProvisionError, match="not a provision plan document"):
        render_plan_markdown({"ok": True})


def test_show_command(tmp_path: Path) -> None:
    saved = tmp_path / "plan.json"
    saved.write_text(json.dumps(_plan().to_json()))

    def show(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "provisioning", "show", *args],
            input=stdin,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )

    done = show(str(saved))
    assert done.returncode == 0, done.stderr
    assert done.stdout == render_plan_markdown(_plan().to_json())
    piped = show("-", stdin=saved.read_text())
    assert piped.returncode == 0 and piped.stdout == done.stdout
    broken = show("-", stdin="not json")
    assert broken.returncode == 1 and "is not JSON" in broken.stderr
    other = show("-", stdin='{"valid": true}')
    assert other.returncode == 1 and "not a provision plan document" in other.stderr
