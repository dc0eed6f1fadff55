"""What every graph needs before it is built: options checked and shipped, workers checked, the layout."""

from __future__ import annotations

from typing import Any

from .blocks import BlockSpec, probe_layout
from .clients import check_workers, current_client
from .config import config
from .layout import ImageLayout, layout_from_metadata
from .options import ship_options

__all__ = ["prepare", "layout_for"]


def prepare(image_ids: list[str], client: Any, load_options: dict[str, Any]) -> tuple[BlockSpec, Any]:
    """The spec of a graph over ``image_ids`` (options checked) and the client it will likely run on."""
    settings = config.get()
    spec = BlockSpec(ship_options(load_options), settings)
    client = current_client(client)
    if client is not None and settings.check_workers:
        check_workers(client, image_ids)
    return spec, client


def layout_for(image_id: str, spec: BlockSpec, client: Any) -> ImageLayout:
    """The layout of ``image_id``: from metadata, else from loading it where the graph will run."""
    layout = layout_from_metadata(image_id)
    if layout is not None:
        return layout
    if client is None:
        return probe_layout(image_id, spec)
    layout_found: ImageLayout = client.submit(probe_layout, image_id, spec, pure=False).result()
    return layout_found
