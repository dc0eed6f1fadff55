"""The READMEs as a user reads them (issue 11): examples run, references resolve, install claims hold.

No README may send its reader to a file or note the reader cannot see (an
issue's notes, a design document outside the repository); every repository
path it names exists; the first example of the main README runs as pasted
(the conformance-kit example has its own test, in test_conformance_kit.py);
and the wado README's table of which install decodes what agrees with the
``[all]`` extra and with what this environment (installed with ``[all]``)
decodes.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
READMES = [REPO / "README.md", *sorted(REPO.glob("plugins/*/README.md"))]
#: Words that point at material outside the repository.
UNSEEN = re.compile(r"issue notes|issue's|closing note|DESIGN\.md|shared/|/work/|issues show|\bissue \d"
                    r"|\bissue #", re.IGNORECASE)
#: Paths of the reader's own project, not of this repository (the plugin example's test data).
THEIRS = {"tests/data/a.npy"}
REPO_PATH = re.compile(r"`((?:core|plugins|tests|benchmarks|scripts)/[A-Za-z0-9_./-]+)`")


@pytest.mark.parametrize("readme", READMES, ids=lambda path: str(path.relative_to(REPO)))
def test_no_reference_the_reader_cannot_follow(readme: Path) -> None:
    text = readme.read_text()
    assert [match.group(0) for match in UNSEEN.finditer(text)] == []
    missing = [path for path in REPO_PATH.findall(text) if path not in THEIRS and not (REPO / path).exists()]
    assert missing == [], f"{readme.name} names paths that do not exist: {missing}"
    for link in re.findall(r"\]\((\.{1,2}/[^)#]+)\)", text):  # relative links
        assert (readme.parent / link).resolve().exists(), link


def test_the_main_readmes_first_example_runs_as_pasted(tmp_path: Path) -> None:
    text = (REPO / "README.md").read_text()
    example = re.search(r"```python\n(.*?)```", text, re.S)
    assert example is not None
    done = subprocess.run([sys.executable, "-c", example.group(1)], capture_output=True, text=True,
                          timeout=120, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "Image('example://ct/32', 128x128 grey" in done.stdout
    assert done.stderr == ""  # the progress bar draws nothing into a pipe


# -- which install decodes what -----------------------------------------------------------------------------
WADO = REPO / "plugins" / "wado"
#: Words of the README's extras table -> the transfer syntaxes they name.
SYNTAXES = {
    "uncompressed": ["1.2.840.10008.1.2", "1.2.840.10008.1.2.1", "1.2.840.10008.1.2.2"],
    "Deflated": ["1.2.840.10008.1.2.1.99"],
    "RLE Lossless": ["1.2.840.10008.1.2.5"],
    "JPEG Baseline": ["1.2.840.10008.1.2.4.50"],
    "8-bit JPEG Extended": ["1.2.840.10008.1.2.4.51"],
    "JPEG Lossless": ["1.2.840.10008.1.2.4.57", "1.2.840.10008.1.2.4.70"],
    "JPEG-LS": ["1.2.840.10008.1.2.4.80", "1.2.840.10008.1.2.4.81"],
    "JPEG 2000": ["1.2.840.10008.1.2.4.90", "1.2.840.10008.1.2.4.91"],
    "HTJ2K": ["1.2.840.10008.1.2.4.201", "1.2.840.10008.1.2.4.202", "1.2.840.10008.1.2.4.203"],
}


def _extras_table() -> dict[str, tuple[str, str]]:
    text = (WADO / "README.md").read_text()
    table = text.split("<!-- extras-table -->", 1)[1].strip().split("\n\n", 1)[0]
    rows = {}
    for line in table.splitlines()[2:]:
        install, adds, decodes = (cell.strip() for cell in line.strip("|").split("|"))
        rows[install] = (adds, decodes)
    return rows


def _requirement_names(requirements: list[str]) -> set[str]:
    return {re.split(r"[<>=!~\[; ]", requirement, maxsplit=1)[0].lower() for requirement in requirements}


def test_the_extras_table_names_what_all_installs() -> None:
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    project = tomllib.loads((WADO / "pyproject.toml").read_text())["project"]
    rows = _extras_table()
    base = {name.strip().lower() for name in rows["`loadstone-wado`"][0].split(",")}
    assert base == _requirement_names(project["dependencies"]) - {"loadstone"}
    extras = project["optional-dependencies"]
    for extra, packages in extras.items():
        row = rows.get(f"`loadstone-wado[{extra}]`")
        assert row is not None, f"the README's table has no row for the [{extra}] extra"
        assert {name.strip().lower() for name in row[0].split(",")} == _requirement_names(packages), extra


def test_all_decodes_what_the_table_says() -> None:
    from loadstone_wado.pixels import available_transfer_syntaxes

    rows = _extras_table()
    claimed = rows["`loadstone-wado`"][1] + " " + rows["`loadstone-wado[all]`"][1]
    available = available_transfer_syntaxes()
    named = [words for words in SYNTAXES if words in claimed]
    assert len(named) == len(SYNTAXES), f"the table no longer names {set(SYNTAXES) - set(named)}"
    for words in named:
        for uid in SYNTAXES[words]:
            assert uid in available, f"{words} ({uid}) is claimed for loadstone-wado[all] but not decodable"
