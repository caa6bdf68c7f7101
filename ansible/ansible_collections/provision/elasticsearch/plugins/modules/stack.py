#!/usr/bin/python
# Copyright: provision contributors
# Apache License 2.0 (see https://www.apache.org/licenses/LICENSE-2.0)
"""The ``provision.elasticsearch.stack`` module: converge (or destroy) an image-search stack."""

from __future__ import annotations

DOCUMENTATION = r"""
module: stack
short_description: Converge an image similarity search stack on Elasticsearch
version_added: "0.1.0"
description:
  - Makes an Elasticsearch cluster match a C(provision) stack (C(stack.yaml)) - CLIP text models
    uploaded and deployed, model aliases, inference endpoints, component and index templates,
    ingest pipelines, indices - then runs its image ingest jobs and kNN smoke tests; with
    O(state=absent) deletes everything the stack manages, in reverse dependency order.
  - It is C(provision apply) / C(provision destroy) as a task, through the same library call.
  - Check mode is C(provision plan) - the task reports changed when the plan has changes and sends
    no write request. Ingest jobs are not run in check mode, so images added to an ingest folder
    are not predicted.
  - Diff mode shows, for every change of the plan, the fields that differ (created and deleted
    resources in full).
  - A plan with conflicts (a declared name owned by something else), blocked changes (they would
    lose data or need a reindex) or refusals by the cluster's dry runs fails the task before any
    write, also in check mode.
author:
  - provision contributors
extends_documentation_fragment:
  - provision.elasticsearch.connection
options:
  state:
    description:
      - V(present) converges the cluster to the stack, then runs ingest and smoke tests.
      - V(absent) deletes every resource the stack manages (nothing it does not manage).
    type: str
    choices: [present, absent]
    default: present
  adopt:
    description:
      - Resources (C(kind/name), for example C(index/my-images)) that exist without being managed by
        this stack, to take over instead of reporting them as conflicts.
    type: list
    elements: str
    default: []
  include_data:
    description:
      - Allow deleting indices that hold documents (when pruning, and with O(state=absent)).
    type: bool
    default: false
  skip_ingest:
    description:
      - Converge resources only; do not run the ingest jobs.
    type: bool
    default: false
  skip_verify:
    description:
      - Do not run the smoke tests.
    type: bool
    default: false
attributes:
  check_mode:
    support: full
    description: Check mode plans and writes nothing.
  diff_mode:
    support: full
    description: Before and after of every changed resource, from the plan's field-level diff.
seealso:
  - module: provision.elasticsearch.stack_info
"""

EXAMPLES = r"""
- name: Converge the image search stack
  provision.elasticsearch.stack:
    stack: "{{ playbook_dir }}/stack.yaml"
    es_url: https://es.example.com:9200
    api_key: "{{ vault_es_api_key }}"

- name: Plan only (run the play with --check --diff to see the field-level changes)
  provision.elasticsearch.stack:
    stack: /srv/search/stack.yaml
    es_url: "{{ es_url }}"
  check_mode: true
  register: planned

- name: An inline stack; its relative paths resolve against base_dir
  provision.elasticsearch.stack:
    base_dir: "{{ playbook_dir }}"
    es_url: "{{ es_url }}"
    skip_verify: true
    stack:
      name: photos
      index_templates:
        photos:
          index_patterns: ["photos*"]
          template: {file: mappings/photos.yaml}
      indices:
        photos: {}

- name: Remove everything the stack manages, documents included
  provision.elasticsearch.stack:
    stack: /srv/search/stack.yaml
    es_url: "{{ es_url }}"
    state: absent
    include_data: true
"""

RETURN = r"""
plan:
  description:
    - The plan, as C(provision plan --output json) prints it (C(schema/plan.schema.json)) - changes
      with C(action), C(address), C(reason), C(before), C(after), C(diff) and C(blocked); conflicts;
      errors; a summary.
    - With O(state=absent), the destroy plan.
  returned: when the stack could be loaded and the cluster read
  type: dict
  sample:
    format_version: 1
    stack: quickstart
    mode: apply
    has_changes: true
    applicable: true
    summary: {create: 9, update: 0, replace: 0, delete: 0, conflicts: 0, blocked: 0, errors: 0}
apply:
  description: Every change of the plan with its status (C(applied), C(failed), C(not_attempted)).
  returned: when changes were applied (not in check mode)
  type: dict
  sample:
    ok: true
    applied: 9
    failed: 0
    not_attempted: 0
    results:
      - {address: index/quickstart-images, action: create, status: applied, seconds: 0.02, error: null}
ingest:
  description: The ingest report - per job scanned, already indexed, embedded, indexed, pruned, failed.
  returned: when the stack has ingest jobs, O(state=present) and not in check mode, unless O(skip_ingest)
  type: dict
verify:
  description: The smoke test report - per test passed, checks, hits, latency.
  returned: when the stack has smoke tests, O(state=present) and not in check mode, unless O(skip_verify)
  type: dict
issues:
  description: "Every problem of an invalid stack, each as C(file:line:col: key.path: message)."
  returned: when the stack is invalid
  type: list
  elements: str
  sample: ["/srv/search/stack.yaml:12:5: models.clip-text.task_type: Input should be 'text_embedding'"]
"""

from typing import Any

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.provision.elasticsearch.plugins.module_utils.provision import (
    CONNECTION_ARGUMENT_SPEC,
    STACK_ARGUMENT_SPEC,
    absent,
    exit_with,
    new_module,
    present,
)


def argument_spec() -> dict[str, dict[str, Any]]:
    return {
        **STACK_ARGUMENT_SPEC,
        **CONNECTION_ARGUMENT_SPEC,
        "state": {"type": "str", "choices": ["present", "absent"], "default": "present"},
        "adopt": {"type": "list", "elements": "str", "default": []},
        "include_data": {"type": "bool", "default": False},
        "skip_ingest": {"type": "bool", "default": False},
        "skip_verify": {"type": "bool", "default": False},
    }


def main() -> None:
    module: AnsibleModule = new_module(argument_spec())
    params = module.params
    action = present if params["state"] == "present" else absent

    def converge(stack: Any, cluster: Any) -> dict[str, Any]:
        return action(stack, cluster, params, module.check_mode, module._diff)

    exit_with(module, converge)


if __name__ == "__main__":
    main()
