"""The image_loader helper: a plain or async function becomes an ImageLoader."""

from __future__ import annotations

import asyncio
import threading
import time

import numpy as np
import pytest

import loadstone
from loadstone import ImageLoadError, ImageLoadObject, LoadstoneError, LoadTimeoutError, PluginError


def test_plain_function(register, make_image) -> None:
    @loadstone.image_loader
    def load(image_id, options):
        return make_image(image_id, nbytes=8)

    assert callable(load)
    assert load.__name__ == "load"  # wraps the function
    direct = load("any:1", {})
    assert isinstance(direct, ImageLoadObject)
    assert direct.result(timeout=10).image_id == "any:1"
    scheme = register(load)
    image = loadstone.load_image(f"{scheme}:2").result(timeout=10)
    assert image.image_id == f"{scheme}:2"
    assert image.size_in_bytes == 8
    assert image.load_time_ms > 0


def test_async_function(register, make_image) -> None:
    seen: dict[str, object] = {}

    @loadstone.image_loader
    async def load(image_id, options):
        await asyncio.sleep(0.01)
        seen["thread"] = threading.get_ident()
        seen["context"] = loadstone.current_load()
        return make_image(image_id)

    scheme = register(load)
    image = loadstone.load_image(f"{scheme}:1").result(timeout=10)
    assert image.image_id == f"{scheme}:1"
    assert seen["thread"] != threading.get_ident()
    context = seen["context"]
    assert isinstance(context, loadstone.LoadContext)
    assert context.image_id == f"{scheme}:1"


def test_decorator_with_executor_argument(register, make_image) -> None:
    import concurrent.futures

    with concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="loadstone-test") as executor:
        names: list[str] = []

        @loadstone.image_loader(executor=executor)
        def load(image_id, options):
            names.append(threading.current_thread().name)
            return make_image(image_id)

        scheme = register(load)
        loadstone.load_image(f"{scheme}:1").result(timeout=10)
    assert names and names[0].startswith("loadstone-test")


def test_image_loader_rejects_a_non_callable() -> None:
    with pytest.raises(TypeError):
        loadstone.image_loader(42)


@pytest.mark.parametrize("kind", ["plain", "async"])
def test_returns_at_once_while_the_function_is_slow(register, make_image, kind) -> None:
    if kind == "plain":
        def slow(image_id, options):
            time.sleep(0.5)
            return make_image(image_id)
    else:
        async def slow(image_id, options):
            await asyncio.sleep(0.5)
            return make_image(image_id)

    loader = loadstone.image_loader(slow)
    started = time.perf_counter()
    direct = loader("slow:1", {})
    assert time.perf_counter() - started < 0.05
    scheme = register(loader)
    started = time.perf_counter()
    through_api = loadstone.load_image(f"{scheme}:1")
    assert time.perf_counter() - started < 0.05
    assert not through_api.done()
    assert direct.result(timeout=10).image_id == "slow:1"
    assert through_api.result(timeout=10).image_id == f"{scheme}:1"


def test_runs_off_the_callers_thread_with_current_load(register, make_image) -> None:
    seen: dict[str, object] = {}

    @loadstone.image_loader
    def load(image_id, options):
        seen["thread"] = threading.get_ident()
        seen["context"] = loadstone.current_load()
        return make_image(image_id)

    scheme = register(load)
    assert loadstone.current_load() is None
    loadstone.load_image(f"{scheme}:7", timeout=30).result(timeout=10)
    assert seen["thread"] != threading.get_ident()
    context = seen["context"]
    assert isinstance(context, loadstone.LoadContext)
    assert context.image_id == f"{scheme}:7"
    assert context.deadline is not None  # the timeout option reached the context
    assert context.cancelled is False
    assert loadstone.current_load() is None


def test_progress_events(register, make_image) -> None:
    events: list[dict] = []
    loadstone.events.subscribe(loadstone.events.IMAGE_LOAD_PROGRESS,
                               lambda name, detail: events.append(detail))

    @loadstone.image_loader
    def load(image_id, options):
        context = loadstone.current_load()
        context.report_progress(25, 100)
        context.report_progress(100, 100)
        context.report_progress(7)  # total unknown
        return make_image(image_id)

    scheme = register(load)
    image_id = f"{scheme}:1"
    loadstone.load_image(image_id).result(timeout=10)
    assert events == [
        {"image_id": image_id, "loaded": 25, "total": 100, "percent": 25.0},
        {"image_id": image_id, "loaded": 100, "total": 100, "percent": 100.0},
        {"image_id": image_id, "loaded": 7, "total": None, "percent": None},
    ]


def test_a_raising_progress_listener_does_not_break_the_load(register, make_image) -> None:
    def listener(name, detail):
        raise RuntimeError("listener bug")

    loadstone.events.subscribe(loadstone.events.IMAGE_LOAD_PROGRESS, listener)

    @loadstone.image_loader
    def load(image_id, options):
        loadstone.current_load().report_progress(1, 2)
        return make_image(image_id)

    scheme = register(load)
    assert loadstone.load_image(f"{scheme}:1").result(timeout=10).image_id == f"{scheme}:1"


@pytest.mark.parametrize("kind", ["plain", "async"])
def test_value_error_becomes_image_load_error(register, kind) -> None:
    if kind == "plain":
        def load(image_id, options):
            raise ValueError("truncated header")
    else:
        async def load(image_id, options):
            raise ValueError("truncated header")

    scheme = register(loadstone.image_loader(load))
    image_id = f"{scheme}:1"
    with pytest.raises(ImageLoadError) as caught:
        loadstone.load_image(image_id).result(timeout=10)
    error = caught.value
    assert isinstance(error.__cause__, ValueError)
    assert "truncated header" in str(error)
    assert error.image_id == image_id


def test_loadstone_errors_pass_unchanged_with_image_id_filled_in(register) -> None:
    @loadstone.image_loader
    def load(image_id, options):
        raise loadstone.InvalidImageError("not a DICOM file")

    scheme = register(load)
    with pytest.raises(loadstone.InvalidImageError) as caught:
        loadstone.load_image(f"{scheme}:1").result(timeout=10)
    assert caught.value.image_id == f"{scheme}:1"
    assert caught.value.message == "not a DICOM file"


@pytest.mark.parametrize("wrong", [None, "an image", np.zeros((2, 2))])
def test_wrong_return_type_is_a_plugin_error(register, wrong) -> None:
    @loadstone.image_loader
    def load(image_id, options):
        return wrong

    scheme = register(load)
    with pytest.raises(PluginError) as caught:
        loadstone.load_image(f"{scheme}:1").result(timeout=10)
    assert isinstance(caught.value, LoadstoneError)
    assert caught.value.image_id == f"{scheme}:1"


def test_uncooperative_function_times_out(register, gates) -> None:
    gate = gates()  # opened at teardown, so the worker thread ends

    @loadstone.image_loader
    def never(image_id, options):
        gate.wait(60)
        raise AssertionError("released only at teardown")

    scheme = register(never)
    started = time.monotonic()
    load_object = loadstone.load_image(f"{scheme}:1", timeout=0.3)
    with pytest.raises(LoadTimeoutError) as caught:
        load_object.result(timeout=10)
    elapsed = time.monotonic() - started
    assert 0.25 <= elapsed < 0.8
    assert caught.value.image_id == f"{scheme}:1"


@pytest.mark.parametrize("kind", ["plain", "async"])
def test_cooperative_function_is_woken_by_the_timeout(kind) -> None:
    stopped = threading.Event()
    if kind == "plain":
        def never(image_id, options):
            try:
                loadstone.current_load().wait(60)
                loadstone.current_load().check()
            finally:
                stopped.set()
    else:
        async def never(image_id, options):
            try:
                await asyncio.sleep(60)
            finally:
                stopped.set()

    loader = loadstone.image_loader(never)  # called directly: the helper enforces the timeout itself
    started = time.monotonic()
    with pytest.raises(LoadTimeoutError):
        loader("never:1", {"timeout": 0.3}).result(timeout=10)
    assert time.monotonic() - started < 0.8
    assert stopped.wait(5), "the function kept running after its timeout"


def test_cancel_reaches_the_function(gates) -> None:
    entered, stopped = threading.Event(), threading.Event()
    reasons: list[object] = []

    def work(image_id, options):
        context = loadstone.current_load()
        context.on_cancel(lambda: reasons.append(context.reason))
        entered.set()
        try:
            context.wait(60)
            context.check()
        finally:
            stopped.set()

    load_object = loadstone.image_loader(work)("c:1", {})
    assert entered.wait(10)
    assert load_object.cancel() is True
    assert stopped.wait(2)
    with pytest.raises(loadstone.LoadCancelledError):
        load_object.result(timeout=5)
    assert len(reasons) == 1 and isinstance(reasons[0], loadstone.LoadCancelledError)


def test_on_cancel_after_cancel_runs_at_once() -> None:
    context = loadstone.LoadContext("ctx:1")
    assert context.cancel() is True
    assert context.cancel() is False
    ran: list[int] = []
    context.on_cancel(lambda: ran.append(1))
    assert ran == [1]
    with pytest.raises(loadstone.LoadCancelledError):
        context.check()


def test_context_deadline_check() -> None:
    context = loadstone.LoadContext("ctx:2", timeout=0.01)
    assert context.remaining() is not None
    context.wait(0.05)
    with pytest.raises(LoadTimeoutError):
        context.check()
    assert context.cancelled
    assert context.remaining() == 0.0
