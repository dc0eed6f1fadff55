"""The error hierarchy: every failure a user sees from a load is one of these.

Each error may carry the ``image_id`` it concerns; the original cause is kept
as ``__cause__`` (``raise ... from exc``) so nothing is lost.
"""

from __future__ import annotations

import concurrent.futures

__all__ = [
    "LoadstoneError",
    "UnknownSchemeError",
    "InvalidImageIdError",
    "ImageLoadError",
    "InvalidImageError",
    "UnsupportedError",
    "ResourceLimitError",
    "PolicyDeniedError",
    "TransportError",
    "LoadTimeoutError",
    "LoadCancelledError",
    "PluginError",
    "LoadstoneWarning",
    "LoadOptionError",
]


class LoadstoneError(Exception):
    """Base of every error loadstone raises."""

    def __init__(self, message: str = "", *, image_id: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.image_id = image_id

    def __str__(self) -> str:
        if self.image_id is not None and self.image_id not in self.message:
            return f"{self.message} (image id {self.image_id!r})"
        return self.message

    def __reduce__(self):  # type: ignore[no-untyped-def]
        # Keeps keyword-only fields across pickling (process pools, dask).
        state = dict(self.__dict__)
        return (_rebuild, (type(self), self.message, state))


def _rebuild(cls: type[LoadstoneError], message: str, state: dict[str, object]) -> LoadstoneError:
    err = cls.__new__(cls)
    Exception.__init__(err, message)
    err.__dict__.update(state)
    return err


class UnknownSchemeError(LoadstoneError):
    """No loader is registered for the image id's scheme."""

    def __init__(
        self,
        message: str = "",
        *,
        image_id: str | None = None,
        scheme: str | None = None,
        installed: tuple[str, ...] = (),
        suggestion: str | None = None,
    ) -> None:
        super().__init__(message, image_id=image_id)
        self.scheme = scheme
        self.installed = installed
        self.suggestion = suggestion


class ImageLoadError(LoadstoneError):
    """A load failed; the base of the errors a loader raises for one image."""


class InvalidImageError(ImageLoadError):
    """The data is not a valid image: bad, truncated or inconsistent."""


class UnsupportedError(ImageLoadError):
    """A codec or feature is missing; the message names what to install."""


class ResourceLimitError(ImageLoadError):
    """A configured size cap would be exceeded."""


class PolicyDeniedError(ImageLoadError):
    """A path or host is outside what the configuration allows."""


class TransportError(ImageLoadError):
    """The network or the server failed; ``status`` is the HTTP status if any."""

    def __init__(
        self,
        message: str = "",
        *,
        image_id: str | None = None,
        status: int | None = None,
        url: str | None = None,
    ) -> None:
        super().__init__(message, image_id=image_id)
        self.status = status
        self.url = url


class LoadTimeoutError(ImageLoadError):
    """The load did not finish within its ``timeout``."""


class LoadCancelledError(ImageLoadError, concurrent.futures.CancelledError):
    """The load was cancelled before it finished."""


class PluginError(LoadstoneError):
    """A plugin failed to import, or broke the plugin contract."""


class LoadOptionError(ValueError):
    """A load option the id's loader does not take (``priorty=3``): raised at once, with a suggestion.

    A ``ValueError`` (a mistake in the call, not a failed load), so
    ``load_images`` raises it rather than failing each load.
    """


class LoadstoneWarning(UserWarning):
    """Warnings about plugins (failed imports, scheme conflicts) and configuration."""


class InvalidImageIdError(UnknownSchemeError, ValueError, TypeError):
    """The image id is not a non-empty ``str`` of the form ``scheme:rest``.

    Also a ``ValueError``/``TypeError``, as Python callers would expect.
    """
