"""Running the real ``ansible-playbook`` and ``ansible-doc`` on the repository's collection.

Ansible runs from the repository root (as the README tells users to), finds the collection through
ANSIBLE_COLLECTIONS_PATH=ansible, runs the modules with the test's own Python (the interpreter that
has ``provisioning``, from this checkout) and keeps its home, temp and config inside ``tmp_path``
so nothing is written to ``~``.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from tests.conftest import REPO

BIN = Path(sys.executable).parent
COLLECTION = REPO / "ansible" / "ansible_collections" / "provision" / "elasticsearch"
PLAYBOOK = REPO / "ansible" / "playbooks" / "quickstart.yml"
_RECAP = re.compile(r"^localhost\s+:\s+(?P<counts>.*)$", re.MULTILINE)


def ansible_env(tmp_path: Path) -> dict[str, str]:
    home = tmp_path / "ansible-home"
    (home / "tmp").mkdir(parents=True, exist_ok=True)
    config = tmp_path / "ansible.cfg"
    config.write_text("[defaults]\n")
    return {
        **os.environ,
        "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
        "PYTHONPATH": os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH", "")) if p),
        "ANSIBLE_CONFIG": str(config),
        "ANSIBLE_COLLECTIONS_PATH": str(REPO / "ansible"),
        "ANSIBLE_HOME": str(home),
        "ANSIBLE_LOCAL_TEMP": str(home / "tmp"),
        "ANSIBLE_REMOTE_TEMP": str(home / "remote-tmp"),
        "ANSIBLE_RETRY_FILES_ENABLED": "false",
        "ANSIBLE_NOCOLOR": "1",
        "ANSIBLE_FORCE_COLOR": "0",
        "ANSIBLE_STDOUT_CALLBACK": "default",
        "ANSIBLE_LOCALHOST_WARNING": "false",
        "HOME": str(tmp_path / "home"),
    }


@dataclass(frozen=True)
class PlayResult:
    returncode: int
    output: str

    @property
    def recap(self) -> dict[str, int]:
        """The PLAY RECAP counts for localhost: ok, changed, failed, ..."""
        found = _RECAP.findall(self.output)
        assert found, f"no PLAY RECAP in the output:\n{self.output[-3000:]}"
        return {k: int(v) for k, v in re.findall(r"(\w+)=(\d+)", found[-1])}


def ansible_playbook(
    tmp_path: Path, playbook: Path, *args: str, extra_vars: dict[str, str] | None = None, timeout: float = 600
) -> PlayResult:
    variables = {"ansible_python_interpreter": sys.executable, **(extra_vars or {})}
    command = [str(BIN / "ansible-playbook"), str(playbook), *args]
    for key, value in variables.items():
        command += ["-e", f"{key}={value}"]
    done = subprocess.run(
        command,
        cwd=REPO,
        env=ansible_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    return PlayResult(done.returncode, done.stdout + done.stderr)


def ansible_doc(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(BIN / "ansible-doc"), *args],
        cwd=REPO,
        env=ansible_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
