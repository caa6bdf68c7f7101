# Copyright: provision contributors
# Apache License 2.0 (see https://www.apache.org/licenses/LICENSE-2.0)
"""Options every provision.elasticsearch module shares: the stack and the cluster connection."""

from __future__ import annotations


class ModuleDocFragment:
    DOCUMENTATION = r"""
options:
  stack:
    description:
      - The stack, as the path of a C(stack.yaml) on the managed host, or as a mapping (an inline stack
        with the same keys as a stack file).
      - A relative path is resolved against O(base_dir).
      - An inline stack is written to a temporary file in O(base_dir), so that its relative paths
        (C({file:}) bodies, model and encoder sources, ingest folders, smoke test images) resolve
        there, and removed when the task ends. Its problems are reported against C(<inline stack>),
        with line numbers of the mapping as YAML.
    type: raw
    required: true
  base_dir:
    description:
      - The directory relative paths are resolved against (see O(stack)).
      - Defaults to the module's working directory, which on a local connection is the directory
        C(ansible-playbook) runs in. Pass C({{ playbook_dir }}) to resolve against the playbook.
    type: path
  es_url:
    description:
      - URL of the Elasticsearch cluster.
      - Overrides the E(ES_URL) environment variable, which overrides C(cluster.url) in the stack.
    type: str
  api_key:
    description:
      - An Elasticsearch API key (the encoded form).
      - Overrides E(ES_API_KEY), which overrides C(cluster.api_key) in the stack.
      - Mutually exclusive with O(username).
    type: str
  username:
    description:
      - User name for basic authentication; needs O(password).
    type: str
  password:
    description:
      - Password for basic authentication.
    type: str
  ca_certs:
    description:
      - A CA bundle (PEM) to verify the cluster's TLS certificate with.
    type: path
  insecure:
    description:
      - Do not verify the cluster's TLS certificate. For test clusters only.
    type: bool
    default: false
requirements:
  - The C(provisioning) Python package (this repository) in the Python that runs the module;
    set C(ansible_python_interpreter) to it.
notes:
  - The modules call the C(provisioning) library in the module's Python; they start no subprocess.
  - Secrets (O(api_key), O(password)) are never logged and never appear in messages.
"""
