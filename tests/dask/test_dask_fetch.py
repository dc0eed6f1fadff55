"""``loadstone fetch --scheduler ADDRESS`` / ``--workers N``: the same files and manifest as a local fetch."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from dask_helpers import Series

from loadstone.cli import main

pytestmark = pytest.mark.integration  # real clusters (and servers) on 127.0.0.1


def fetched(folder: Path) -> dict[str, Any]:
    manifest: dict[str, Any] = json.loads((folder / "manifest.json").read_text())
    return manifest


def assert_same_fetch(ours: Path, local: Path) -> None:
    mine, theirs = fetched(ours), fetched(local)
    assert mine["images"] == theirs["images"]  # file names, shapes, dtypes, geometry: every entry
    errors = [{image_id: failed["error"] for image_id, failed in m["failed"].items()} for m in (mine, theirs)]
    assert errors[0] == errors[1]
    for entry in theirs["images"].values():
        np.testing.assert_array_equal(np.load(ours / entry["file"]), np.load(local / entry["file"]))


def test_fetch_on_a_running_cluster(cluster_client: Any, dicomfile_series: Series, tmp_path: Path,
                                    capsys: pytest.CaptureFixture[str]) -> None:
    missing = f"{dicomfile_series.series_id}/no-such-file.dcm"
    args = ["fetch", "--series", dicomfile_series.series_id, missing, "-q"]
    assert main([*args, "-o", str(tmp_path / "local")]) == 1
    capsys.readouterr()
    address = cluster_client.scheduler.address
    assert main([*args, "-o", str(tmp_path / "dask"), "--scheduler", address, "--set", "dask.retries=1"]) == 1
    captured = capsys.readouterr()
    assert captured.out.startswith("24 images, ")  # the same summary line
    assert "1 of 25 images failed" in captured.err and "no-such-file.dcm" in captured.err
    assert_same_fetch(tmp_path / "dask", tmp_path / "local")
    assert fetched(tmp_path / "dask")["failed"][missing]["error"] == "InvalidImageError"


def test_fetch_on_a_local_cluster_of_n_workers(dicomfile_series: Series, tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    ids = dicomfile_series.image_ids[:10]
    assert main(["fetch", *ids, "-o", str(tmp_path / "local"), "-q", "--png"]) == 0
    assert main(["fetch", *ids, "-o", str(tmp_path / "dask"), "-q", "--png", "--workers", "2"]) == 0
    assert capsys.readouterr().out.startswith("10 images, ")
    assert_same_fetch(tmp_path / "dask", tmp_path / "local")
    for entry in fetched(tmp_path / "local")["images"].values():
        png = entry["png"]
        assert (tmp_path / "dask" / png).read_bytes() == (tmp_path / "local" / png).read_bytes()


def test_fetch_options(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["fetch", "--help"]) == 0
    usage = capsys.readouterr().out
    assert "--scheduler ADDRESS" in usage and "--workers N" in usage
    code = main(["fetch", "example://ct/0", "-o", str(tmp_path), "--workers", "2", "--scheduler", "tcp://x:1"])
    assert code == 2 and "not allowed with argument" in capsys.readouterr().err
    assert main(["plugins", "--json"]) == 0
    plugins = {plugin["name"]: plugin for plugin in json.loads(capsys.readouterr().out)}
    assert plugins["dask"]["distribution"] == "loadstone-dask" and plugins["dask"]["schemes"] == []
