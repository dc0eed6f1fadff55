"""Which ``distributed`` client a call uses, and whether its workers can load the schemes asked for.

dask's convention: a computation runs on the current scheduler, the default
``distributed.Client`` when one exists, dask's local schedulers otherwise;
a function that submits work itself takes ``client=``.  Before a graph is
built, :func:`check_workers` asks every worker (``Client.run``, one round
trip) whether it has a loader for each scheme of the graph, so a worker
without the plugin gives one error naming the worker and the distribution
to install, instead of one failed task per chunk.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import loadstone
from loadstone.errors import LoadstoneError
from loadstone.toolkit import LRUCache

from .errors import WorkerPluginMissingError

__all__ = ["current_client", "check_workers", "schemes_of", "worker_schemes"]

# (scheduler, workers, schemes) already checked: a graph per chunk size or per series asks once.
_checked: LRUCache[tuple[str, frozenset[str], frozenset[str]], bool] = LRUCache(256)


def current_client(client: Any = None) -> Any:
    """``client`` if given, else the default ``distributed.Client``, else None (dask's local schedulers)."""
    if client is not None:
        return client
    from distributed import default_client

    try:
        return default_client()
    except ValueError:
        return None


def schemes_of(image_ids: Iterable[str]) -> list[str]:
    """The distinct schemes of ``image_ids``, first seen first (a bad id raises its typed error)."""
    return list(dict.fromkeys(loadstone.scheme_of(image_id) for image_id in image_ids))


def worker_schemes(schemes: list[str]) -> dict[str, str | None]:
    """On a worker: for each scheme, None if it loads here, else why not (run by :func:`check_workers`)."""
    problems: dict[str, str | None] = {}
    for scheme in schemes:
        try:
            loadstone.get_image_loader(scheme)
            problems[scheme] = None
        except LoadstoneError as exc:
            problems[scheme] = f"{type(exc).__name__}: {exc}"
    return problems


def _distribution(scheme: str) -> str | None:
    served = loadstone.scheme_distributions()
    if scheme in served:
        return served[scheme]
    known: dict[str, str] = loadstone.KNOWN_SCHEMES
    return known.get(scheme)


def _missing(worker: str, scheme: str, why: str, example: str | None) -> WorkerPluginMissingError:
    distribution = _distribution(scheme)
    if distribution is not None:
        fix = f"install {distribution} on every worker (the same environment as this client's)"
    else:
        fix = ("its loader was registered in code on this client: register it on the workers too "
               "(client.run, or a distributed WorkerPlugin)")
    return WorkerPluginMissingError(
        f"dask worker {worker} cannot load {scheme!r} image ids: {why}; {fix}",
        image_id=example, worker=worker, scheme=scheme, distribution=distribution)


def check_workers(client: Any, image_ids: Iterable[str]) -> None:
    """Raise :class:`WorkerPluginMissingError` if a worker lacks the loader of a scheme in ``image_ids``."""
    examples: dict[str, str] = {}
    for image_id in image_ids:
        examples.setdefault(loadstone.scheme_of(image_id), image_id)
    if not examples:
        return
    workers = frozenset(client.scheduler_info()["workers"])
    key = (str(client.scheduler.address), workers, frozenset(examples))
    if _checked.get(key):
        return
    answers = client.run(worker_schemes, list(examples), on_error="return")
    for worker in sorted(answers):
        answer = answers[worker]
        if isinstance(answer, BaseException):
            raise WorkerPluginMissingError(
                f"dask worker {worker} cannot run loadstone-dask ({type(answer).__name__}: {answer}); "
                "install loadstone-dask and the loadstone plugins on every worker",
                worker=worker, distribution="loadstone-dask") from answer
        for scheme, why in answer.items():
            if why is not None:
                raise _missing(worker, scheme, why, examples.get(scheme))
    _checked.put(key, True)
