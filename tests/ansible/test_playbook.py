"""The collection through the real ``ansible-playbook``, against a private sandbox.

The example playbook (ansible/playbooks/quickstart.yml) in the order a user runs it: ``--check
--diff`` (changed, a diff, and not one write request), for real (changed), again (changed=0, not
one write request), then ``state=absent`` (everything removed). Then the ways a task must fail, each
with its message, and an inline stack whose out-of-band drift shows as a field-level diff.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
import yaml
from elasticsearch import Elasticsearch

from es_sandbox import SandboxServer
from tests.ansible.runner import PLAYBOOK, PlayResult, ansible_playbook

pytestmark = pytest.mark.slow


def _task_line(result: PlayResult, task: str) -> str:
    """The status line (``ok:``/``changed:``/``fatal:``) printed for the task whose name ends with ``task``."""
    lines = result.output.splitlines()
    for at, line in enumerate(lines):
        if line.startswith("TASK [") and f"{task}]" in line:
            for following in lines[at + 1 :]:
                if following.startswith(("ok:", "changed:", "fatal:", "skipping:")):
                    return following
    raise AssertionError(f"task {task!r} not in the output:\n{result.output[-3000:]}")


def test_quickstart_playbook_check_apply_rerun_absent(fresh_sandbox: SandboxServer, tmp_path: Path) -> None:
    log = fresh_sandbox.state.log
    url = {"es_url": fresh_sandbox.url}
    es = Elasticsearch(fresh_sandbox.url)

    # --check --diff: the plan, shown as a diff, reported as changed; nothing written.
    log.clear()
    checked = ansible_playbook(tmp_path, PLAYBOOK, "--check", "--diff", extra_vars=url)
    assert checked.returncode == 0, checked.output[-4000:]
    assert checked.recap["changed"] == 1 and checked.recap["failed"] == 0
    assert _task_line(checked, "Stack present").startswith("changed:")
    assert "+++ after: index/quickstart-images (create" in checked.output
    assert "+++ after: deployment/tiny-clip-text-multilingual-v1 (create" in checked.output
    assert "\n+        dims: 32\n" in checked.output  # the index template's vector field, in full
    assert "\n-type: basic\n+type: trial\n" in checked.output  # the license, field by field
    assert "plan (apply): 7 to create, 1 to update, 0 to replace, 0 to delete" in checked.output
    assert "check mode: nothing written" in checked.output
    assert log.writes() == [], [f"{w.method} {w.path}" for w in log.writes()]
    assert log.reads(), "check mode did not even read the cluster"
    assert not es.indices.exists(index="quickstart-images")

    # For real: everything created, images indexed, smoke tests passed.
    applied = ansible_playbook(tmp_path, PLAYBOOK, extra_vars=url)
    assert applied.returncode == 0, applied.output[-4000:]
    assert applied.recap["changed"] == 1 and applied.recap["failed"] == 0
    assert "indexed: 84" in applied.output
    assert "smoke tests: 5 passed, 0 failed" in applied.output
    assert "converged: True" in applied.output
    assert es.count(index="quickstart-images")["count"] == 84

    # Again: nothing to do, and not one write request.
    log.clear()
    rerun = ansible_playbook(tmp_path, PLAYBOOK, "--diff", extra_vars=url)
    assert rerun.returncode == 0, rerun.output[-4000:]
    assert rerun.recap["changed"] == 0 and rerun.recap["failed"] == 0
    assert _task_line(rerun, "Stack present").startswith("ok:")
    assert "applied: 0" in rerun.output and "indexed: 0" in rerun.output
    assert log.writes() == [], [f"{w.method} {w.path}" for w in log.writes()]

    # state=absent without include_data refuses (the index holds documents) and deletes nothing.
    refused = ansible_playbook(tmp_path, PLAYBOOK, extra_vars={**url, "state": "absent"})
    assert refused.returncode != 0
    assert "holds 84 documents" in refused.output
    assert es.indices.exists(index="quickstart-images")

    # state=absent, documents included: everything the stack manages is gone.
    removed = ansible_playbook(
        tmp_path, PLAYBOOK, extra_vars={**url, "state": "absent", "include_data": "true"}
    )
    assert removed.returncode == 0, removed.output[-4000:]
    assert removed.recap["changed"] == 1
    assert "plan (destroy): 0 to create, 0 to update, 0 to replace, 7 to delete" in removed.output
    assert not es.indices.exists(index="quickstart-images")
    assert es.ml.get_trained_models(model_id="tiny-clip-*", allow_no_match=True)["count"] == 0
    assert not es.indices.exists_index_template(name="quickstart-images")

    # Absent again: nothing left to delete.
    again = ansible_playbook(
        tmp_path, PLAYBOOK, extra_vars={**url, "state": "absent", "include_data": "true"}
    )
    assert again.returncode == 0 and again.recap["changed"] == 0, again.output[-4000:]
    es.close()


@pytest.mark.parametrize("case", ["missing stack file", "invalid stack", "unreachable cluster"])
def test_a_failing_task_says_why(case: str, fresh_sandbox: SandboxServer, tmp_path: Path) -> None:
    extra = {"es_url": fresh_sandbox.url}
    if case == "missing stack file":
        extra["stack_file"] = str(tmp_path / "nowhere" / "stack.yaml")
        expected = f"stack file not found: {tmp_path / 'nowhere' / 'stack.yaml'}"
    elif case == "invalid stack":
        bad = tmp_path / "stack.yaml"
        bad.write_text("name: broken\nindices:\n  photos: {}\nmodles: {}\n")
        extra["stack_file"] = str(bad)
        expected = f"{bad}:4:1: modles: unknown key 'modles'; did you mean 'models'?"
    else:
        extra["es_url"] = "http://127.0.0.1:9"
        expected = "cannot reach Elasticsearch"
    result = ansible_playbook(tmp_path, PLAYBOOK, extra_vars=extra)
    assert result.returncode == 2, result.output[-4000:]
    assert result.recap["failed"] == 1
    fatal = _task_line(result, "Stack present")
    assert fatal.startswith("fatal:")
    assert expected in result.output, result.output[-4000:]
    assert fresh_sandbox.state.log.writes() == []


INLINE_PLAY = """
- hosts: localhost
  connection: local
  gather_facts: false
  vars:
    inline_stack:
      name: "{{ stack_name }}"
      index_templates:
        photos:
          index_patterns: ["photos*"]
          priority: 300
          template: {file: mappings/photos.yaml}
      indices:
        photos:
          settings: {index: {refresh_interval: "{{ refresh }}"}}
  module_defaults:
    group/provision.elasticsearch.elasticsearch:
      es_url: "{{ es_url }}"
      base_dir: "{{ playbook_dir }}"
  tasks:
    - name: Inline stack
      provision.elasticsearch.stack:
        stack: "{{ inline_stack }}"
      register: inline

    - name: Status
      provision.elasticsearch.stack_info:
        stack: "{{ inline_stack }}"
      register: info

    - name: Report
      ansible.builtin.copy:
        dest: "{{ playbook_dir }}/result.yaml"
        content: "{{ {'inline': inline, 'info': info} | to_nice_yaml }}"
      check_mode: false
"""


def test_inline_stack_with_module_defaults_resolves_against_base_dir_and_diffs_field_by_field(
    fresh_sandbox: SandboxServer, tmp_path: Path
) -> None:
    (tmp_path / "mappings").mkdir()
    (tmp_path / "mappings" / "photos.yaml").write_text(
        textwrap.dedent(
            """
            settings: {number_of_shards: 1, number_of_replicas: 0}
            mappings:
              properties:
                image_name: {type: keyword}
                vec: {type: dense_vector, dims: 4, similarity: cosine}
            """
        )
    )
    play = tmp_path / "inline.yml"
    play.write_text(INLINE_PLAY)
    name = "photos"  # the sandbox is this test's own
    base = {"es_url": fresh_sandbox.url, "stack_name": "inline"}

    created = ansible_playbook(tmp_path, play, extra_vars={**base, "refresh": "1s"})
    assert created.returncode == 0, created.output[-4000:]
    report = yaml.safe_load((tmp_path / "result.yaml").read_text())
    assert report["inline"]["changed"] is True
    assert report["inline"]["plan"]["summary"]["create"] == 2
    assert report["info"]["converged"] is True and report["info"]["doc_counts"] == {name: 0}
    assert not list(tmp_path.glob(".provision-inline-*")), "the inline stack's temporary file was left behind"

    log = fresh_sandbox.state.log
    log.clear()
    drift = ansible_playbook(tmp_path, play, "--check", "--diff", extra_vars={**base, "refresh": "5s"})
    assert drift.returncode == 0, drift.output[-4000:]
    assert log.writes() == []
    assert f"+++ after: index/{name} (update" in drift.output
    assert "-settings.index.refresh_interval: 1s" in drift.output
    assert "+settings.index.refresh_interval: 5s" in drift.output
    report = yaml.safe_load((tmp_path / "result.yaml").read_text())
    assert report["inline"]["changed"] is True
    assert report["info"]["converged"] is False and report["info"]["drifted"] == [f"index/{name}"]

    invalid = ansible_playbook(
        tmp_path, play, extra_vars={**base, "stack_name": "Not-A-Name", "refresh": "1s"}
    )
    assert invalid.returncode == 2, invalid.output[-4000:]
    assert "<inline stack>:1:7: name:" in invalid.output, invalid.output[-4000:]
    assert not list(tmp_path.glob(".provision-inline-*"))
