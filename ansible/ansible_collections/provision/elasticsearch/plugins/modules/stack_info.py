#!/usr/bin/python
# Copyright: provision contributors
# Apache License 2.0 (see https://www.apache.org/licenses/LICENSE-2.0)
"""The ``provision.elasticsearch.stack_info`` module: the status of an image-search stack."""

from __future__ import annotations

DOCUMENTATION = r"""
module: stack_info
short_description: Status of an image similarity search stack on Elasticsearch
version_added: "0.1.0"
description:
  - Reads, for every resource a C(provision) stack declares, whether it exists, is managed by this
    stack, has drifted from the declaration (and which fields), and what the cluster reports about
    it - deployment state and allocations, document counts.
  - It is C(provision status) as a task. It only reads, and never reports changed.
author:
  - provision contributors
extends_documentation_fragment:
  - provision.elasticsearch.connection
attributes:
  check_mode:
    support: full
    description: The module only reads; it runs the same in check mode.
  diff_mode:
    support: none
    description: Nothing changes, so there is nothing to diff.
seealso:
  - module: provision.elasticsearch.stack
"""

EXAMPLES = r"""
- name: Read the stack's status
  provision.elasticsearch.stack_info:
    stack: "{{ playbook_dir }}/stack.yaml"
    es_url: "{{ es_url }}"
  register: search_stack

- name: Fail when something drifted
  ansible.builtin.assert:
    that: search_stack.converged
    fail_msg: "not converged: {{ search_stack.drifted | join(', ') }}"

- name: Show the documents per index
  ansible.builtin.debug:
    var: search_stack.doc_counts
"""

RETURN = r"""
stack:
  description: The stack's name.
  returned: success
  type: str
  sample: quickstart
cluster:
  description: The cluster's URL (credentials removed).
  returned: success
  type: str
  sample: https://es.example.com:9200
converged:
  description: Every declared resource is present, managed by this stack, in sync and in its declared state.
  returned: success
  type: bool
  sample: true
resources:
  description:
    - Per declared resource, as C(provision status --output json) - C(address), C(kind), C(name),
      C(present), C(managed), C(drifted), C(drift) (the differing fields), C(ready), C(reason) and
      C(details) (deployment state and allocations, document count).
  returned: success
  type: list
  elements: dict
  sample:
    - address: deployment/tiny-clip-text-multilingual-v1
      kind: deployment
      name: tiny-clip-text-multilingual-v1
      present: true
      managed: true
      drifted: false
      drift: []
      ready: true
      reason: null
      details: {state: started, allocation: fully_allocated, allocations: 1/1}
drifted:
  description: Addresses of the resources that are missing, not managed by this stack, drifted or not ready.
  returned: success
  type: list
  elements: str
  sample: [index/quickstart-images]
deployments:
  description: Per deployment id, its state, allocation state and allocations.
  returned: success
  type: dict
  sample: {tiny-clip-text-multilingual-v1: {state: started, allocation: fully_allocated, allocations: 1/1}}
doc_counts:
  description: Per declared index that exists, its number of documents.
  returned: success
  type: dict
  sample: {quickstart-images: 84}
"""

from typing import Any

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.provision.elasticsearch.plugins.module_utils.provision import (
    CONNECTION_ARGUMENT_SPEC,
    STACK_ARGUMENT_SPEC,
    exit_with,
    new_module,
    stack_status,
)


def argument_spec() -> dict[str, dict[str, Any]]:
    return {**STACK_ARGUMENT_SPEC, **CONNECTION_ARGUMENT_SPEC}


def main() -> None:
    module: AnsibleModule = new_module(argument_spec())
    exit_with(module, stack_status)


if __name__ == "__main__":
    main()
