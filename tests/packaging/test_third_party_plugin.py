"""A third-party plugin, built from the README's files, installed into a fresh venv beside the core.

Its scheme must load through entry-point discovery alone.  Dependencies
(numpy, pluggy, urllib3) come from the package index or pip's cache.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import venv
from pathlib import Path

import pytest

pytestmark = [pytest.mark.packaging, pytest.mark.timeout(600)]

REPO = Path(__file__).resolve().parents[2]
FILE_MARK = re.compile(r"<!-- plugin-file: (?P<path>\S+) -->\s*```\w*\n(?P<body>.*?)```", re.S)


def readme_plugin_files() -> dict[str, str]:
    files = {m["path"]: m["body"] for m in FILE_MARK.finditer((REPO / "README.md").read_text())}
    assert {"pyproject.toml", "loadstone_npy.py"} <= set(files), "README lost the plugin example"
    return files


def run(*args: str | Path, cwd: Path | None = None, env: dict[str, str] | None = None) -> str:
    done = subprocess.run([str(a) for a in args], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=480)
    assert done.returncode == 0, f"{args} failed:\n{done.stdout}\n{done.stderr}"
    return done.stdout


@pytest.fixture(scope="module")
def fresh_venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("third_party")
    plugin_dir = root / "loadstone-npy"
    plugin_dir.mkdir()
    for name, body in readme_plugin_files().items():
        (plugin_dir / name).write_text(body)
    wheels = root / "wheels"
    # Build both wheels with this environment's setuptools: no network for building.
    run(sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation",
        "-w", wheels, REPO, plugin_dir)
    env_dir = root / "venv"
    venv.EnvBuilder(with_pip=True, clear=True).create(env_dir)
    python = env_dir / "bin" / "python"
    run(python, "-m", "pip", "install", "-q", "--disable-pip-version-check",
        "--find-links", wheels, "loadstone", "loadstone-npy")
    return python


def clean_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LOADSTONE_", "PYTHON"))}
    return env


def test_scheme_loads_through_discovery_alone(fresh_venv: Path, tmp_path: Path) -> None:
    script = tmp_path / "use.py"
    script.write_text(
        "import json, sys, numpy as np\n"
        "import loadstone\n"
        "assert 'loadstone_npy' not in sys.modules, 'import loadstone imported a plugin'\n"
        "array = np.arange(12, dtype=np.uint16).reshape(3, 4)\n"
        f"np.save({str(tmp_path / 'a.npy')!r}, array)\n"
        f"image = loadstone.load_image('npy:' + {str(tmp_path / 'a.npy')!r}).result(30)\n"
        "assert (image.pixel_data == array).all()\n"
        "info = {p.name: [p.distribution, p.version, list(p.schemes), p.status]\n"
        "        for p in loadstone.plugins()}\n"
        "missing = loadstone.load_image('npy:/no/such.npy').exception(30)\n"
        "print(json.dumps({'rows': image.rows, 'columns': image.columns, 'max': image.max_pixel_value,\n"
        "                  'plugins': info, 'error': type(missing).__name__,\n"
        "                  'location': loadstone.__file__}))\n"
    )
    result = json.loads(run(fresh_venv, script, cwd=tmp_path, env=clean_env()))
    assert (result["rows"], result["columns"], result["max"]) == (3, 4, 11.0)
    assert result["plugins"]["npy"] == ["loadstone-npy", "0.1.0", ["npy"], "loaded"]
    assert result["error"] == "InvalidImageError"
    # The core came from the fresh venv, not from this checkout.
    assert str(fresh_venv.parent.parent) in result["location"]


def test_cli_lists_the_plugin(fresh_venv: Path, tmp_path: Path) -> None:
    output = run(fresh_venv.parent / "loadstone", "plugins", cwd=tmp_path, env=clean_env())
    row = next(line for line in output.splitlines() if line.startswith("npy"))
    assert "loadstone-npy" in row and "0.1.0" in row and "loaded" in row


def test_disabling_the_plugin(fresh_venv: Path, tmp_path: Path) -> None:
    env = clean_env() | {"LOADSTONE_DISABLE_PLUGINS": "npy"}
    code = (
        "import loadstone\n"
        "try:\n"
        "    loadstone.load_image('npy:/x.npy')\n"
        "except loadstone.UnknownSchemeError as exc:\n"
        "    print('unknown', [p.status for p in loadstone.plugins() if p.name == 'npy'])\n"
    )
    assert run(fresh_venv, "-c", code, cwd=tmp_path, env=env).strip() == "unknown ['disabled']"
