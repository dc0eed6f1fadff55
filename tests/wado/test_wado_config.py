"""The wado package's shape: cheap to import, public names on first access, settings in loadstone's style."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

import loadstone
from loadstone_wado import config


def test_configure_restore_reset_and_configured(tmp_path: Path) -> None:
    previous = config.configure(root=str(tmp_path), max_pixel_bytes=1000)
    assert config.get_config().root == tmp_path.resolve() and config.config.max_pixel_bytes == 1000
    config.restore(previous)
    assert config.get_config() is previous
    with config.configured(decode_pool="never") as settings:
        assert settings.decode_pool == "never"
    assert config.get_config().decode_pool == previous.decode_pool
    config.configure(max_file_bytes=5)
    config.reset()
    assert config.get_config().max_file_bytes == config.DEFAULT_MAX_FILE_BYTES
    assert isinstance(config.get_config(), config.WadoConfig)


def test_bad_values_change_nothing() -> None:
    before = config.get_config()
    for changes in ({"decode_pool": "sometimes"}, {"max_pixel_bytes": -1}, {"decode_workers": 0}):
        with pytest.raises(ValueError):
            config.configure(**changes)
    with pytest.raises(TypeError):
        config.configure(no_such_setting=1)
    assert config.get_config() is before


def test_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("LOADSTONE_WADO_ROOT", str(tmp_path))
    monkeypatch.setenv("LOADSTONE_WADO_MAX_PIXEL_BYTES", "1234")
    monkeypatch.setenv("LOADSTONE_WADO_DECODERS", "1.2.840.10008.1.2.4.90=gdcm")
    monkeypatch.setenv("LOADSTONE_WADO_DECODE_POOL", "Never")
    monkeypatch.setenv("LOADSTONE_WADO_DECODE_WORKERS", "3")
    monkeypatch.setenv("LOADSTONE_WADO_MMAP", "0")
    config.reset()
    settings = config.get_config()
    assert settings.root == tmp_path.resolve() and settings.max_pixel_bytes == 1234
    assert dict(settings.decoders) == {"1.2.840.10008.1.2.4.90": "gdcm"}
    assert (settings.decode_pool, settings.decode_workers, settings.mmap_files) == ("never", 3, False)


def test_loadstone_sees_the_settings() -> None:
    assert config.config in loadstone.plugin_configs()


def test_importing_the_package_is_cheap_and_its_names_load_on_first_access() -> None:
    code = ("import sys, loadstone_wado as w; assert 'pydicom' not in sys.modules; "
            "assert w.load_dicomfile.__name__ == 'load_dicomfile' and callable(w.read_part10); "
            "assert 'pydicom' in sys.modules and 'load_wadors' in dir(w)")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)
