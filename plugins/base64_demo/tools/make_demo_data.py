"""Synthesise the demo phantoms and write them into the package as base64 text.

Run from the repository root after changing a phantom or a series spec::

    .venv/bin/python plugins/base64_demo/tools/make_demo_data.py

This is the only place pixels are made; the installed plugin just decodes
what this script wrote.  Phantoms are defined in patient coordinates (LPS,
mm) and sampled at the voxel positions the series' metadata states, so the
geometry the provider reports is exactly where the anatomy is.  Output is
deterministic (fixed seed; noise is clipped, so the noise-free phantom
bounds the data whatever numpy's random streams do).
"""

from __future__ import annotations

import argparse
import colorsys
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np

PACKAGE_DIR = Path(__file__).resolve().parents[1] / "loadstone_base64_demo"
if str(PACKAGE_DIR.parent) not in sys.path:  # runs from a checkout without installing
    sys.path.insert(0, str(PACKAGE_DIR.parent))

from loadstone_base64_demo._geometry import Geometry  # noqa: E402
from loadstone_base64_demo._pixels import encode  # noqa: E402
from loadstone_base64_demo._series import COLOR, CT, MR, SeriesSpec  # noqa: E402

SEED = 20240115
CT_NOISE_HU = 6.0  # standard deviation inside the body; clipped at NOISE_CLIP sigmas
MR_NOISE = 6.0
NOISE_CLIP = 4.0
BODY = (5.0, 148.0, 108.0)  # CT body outline: centre y, semi-axes x and y (mm)
RECONSTRUCTION_RADIUS = 160.0  # mm; the CT's field of view is 320 mm
PADDING_HU = float((CT.pixel_padding_value or 0) * CT.slope + CT.intercept)

Field = Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray]


# -- shapes -------------------------------------------------------------------
def _ellipse(
    x: np.ndarray, y: np.ndarray, cx: float | np.ndarray, cy: float, ax: float, ay: float
) -> np.ndarray:
    """Inside an elliptic cylinder along z."""
    return ((x - cx) / ax) ** 2 + ((y - cy) / ay) ** 2 <= 1.0


def _rho(
    x: np.ndarray, y: np.ndarray, z: np.ndarray, c: tuple[float, float, float], a: tuple[float, float, float]
) -> np.ndarray:
    """Normalised ellipsoid radius: < 1 inside, 1 on the surface."""
    return np.sqrt(((x - c[0]) / a[0]) ** 2 + ((y - c[1]) / a[1]) ** 2 + ((z - c[2]) / a[2]) ** 2)


def _ellipsoid(
    x: np.ndarray, y: np.ndarray, z: np.ndarray, c: tuple[float, float, float], a: tuple[float, float, float]
) -> np.ndarray:
    return _rho(x, y, z, c, a) <= 1.0


# -- CT: chest and upper abdomen, contrast-enhanced, values in HU ----------------
def _diaphragm(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Height (z, mm) of the diaphragm: the right dome (negative x) rides higher, the back dips lower."""
    domes = 30.0 * np.exp(-(((x + 60.0) / 60.0) ** 2)) + 18.0 * np.exp(-(((x - 60.0) / 55.0) ** 2))
    return -165.0 + domes - 0.12 * y


def ct_hu(x: np.ndarray, y: np.ndarray, z: np.ndarray) -> np.ndarray:
    """Noise-free CT phantom in Hounsfield units at patient points (x, y, z)."""
    hu = np.full(np.broadcast(x, y, z).shape, -1000.0)
    x, y, z = np.broadcast_arrays(x, y, z)
    thorax = z > _diaphragm(x, y)
    abdomen = ~thorax

    hu[(np.abs(x) < 140) & (y > 122) & (y < 128)] = -250.0  # carbon-fibre table

    cy, ax, ay = BODY
    body = _ellipse(x, y, 0, cy, ax, ay)
    hu[body] = -100.0  # subcutaneous fat
    muscle = _ellipse(x, y, 0, cy, ax - 14, ay - 12)
    hu[muscle] = 50.0
    cavity = _ellipse(x, y, 0, cy + 4, ax - 28, ay - 26)
    hu[cavity & abdomen] = -60.0  # mesenteric fat
    hu[cavity & thorax] = -40.0  # mediastinal fat

    # Ribs: arcs in a shell under the chest wall whose sectors turn with z.
    shell = _ellipse(x, y, 0, cy + 2, ax - 18, ay - 17) & ~_ellipse(x, y, 0, cy + 2, ax - 25, ay - 24)
    theta = np.arctan2(y - cy, x)
    ribs = shell & (np.sin(3.0 * theta + z / 9.0) > 0.55) & (np.abs(x) > 25) & (z > -215)
    hu[ribs] = 750.0

    # Lungs, with a gravity gradient (posterior denser), bronchi and vessels.
    for side in (-1.0, 1.0):
        lung = _ellipse(x, y, side * 70.0, 4.0, 56.0, 80.0) & thorax & (z > _diaphragm(x, y) + 3.0)
        hu[lung] = -860.0 + 0.35 * (y[lung] - 4.0)
        for k in range(7):
            angle = k * 2.0 * np.pi / 7.0 + 0.3 * side
            vx = side * 70.0 + 30.0 * np.cos(angle) + 0.15 * side * (z + 100.0)
            vy = 4.0 + 45.0 * np.sin(angle)
            hu[lung & _ellipse(x, y, vx, vy, 3.2, 3.2)] = 40.0
    hu[_ellipsoid(x, y, z, (-80.0, -25.0, -95.0), (8.0, 8.0, 8.0))] = 35.0  # a nodule in the right lung

    hu[_ellipse(x, y, 0, -92, 15, 7) & (z > -175)] = 550.0  # sternum
    bronchi = (z > -95) & (_ellipse(x, y, -30, 8, 6, 6) | _ellipse(x, y, 28, 10, 6, 6))
    hu[bronchi] = -950.0
    oesophagus = thorax & _ellipse(x, y, 6, 32, 7, 7)
    hu[oesophagus] = 40.0
    hu[oesophagus & _ellipse(x, y, 6, 32, 2.5, 2.5)] = -900.0

    # Heart: myocardium round a contrast-filled blood pool; sits on the diaphragm.
    heart = _ellipsoid(x, y, z, (15.0, -28.0, -120.0), (55.0, 45.0, 45.0)) & thorax
    hu[heart] = 90.0
    hu[heart & _ellipsoid(x, y, z, (17.0, -28.0, -118.0), (40.0, 32.0, 33.0))] = 220.0
    hu[(z > -90) & _ellipse(x, y, 4, -30, 14, 14)] = 230.0  # ascending aorta

    # Abdomen: liver (with a lesion and the gallbladder), spleen, stomach, kidneys.
    liver = _ellipsoid(x, y, z, (-55.0, 0.0, -190.0), (85.0, 80.0, 75.0)) & abdomen & cavity
    hu[liver] = 110.0
    hu[liver & _ellipsoid(x, y, z, (-70.0, -15.0, -205.0), (10.0, 10.0, 10.0))] = 45.0
    hu[liver & _ellipsoid(x, y, z, (-55.0, -55.0, -220.0), (15.0, 13.0, 25.0))] = 10.0
    hu[_ellipsoid(x, y, z, (95.0, 45.0, -185.0), (30.0, 42.0, 50.0)) & abdomen & cavity] = 120.0
    stomach = _ellipsoid(x, y, z, (55.0, -35.0, -185.0), (42.0, 34.0, 45.0)) & abdomen & cavity
    hu[stomach] = 45.0
    lumen = stomach & _ellipsoid(x, y, z, (55.0, -35.0, -185.0), (36.0, 28.0, 39.0))
    hu[lumen] = 12.0
    hu[lumen & (y < -48.0)] = -1000.0  # air rises anteriorly in a supine patient
    for side, kz in ((-1.0, -238.0), (1.0, -230.0)):
        kidney = _ellipsoid(x, y, z, (side * 72.0, 58.0, kz), (26.0, 30.0, 48.0))
        hu[kidney] = 190.0
        hu[kidney & _ellipsoid(x, y, z, (side * 68.0, 56.0, kz), (14.0, 17.0, 30.0))] = 125.0

    # Vessels running through the diaphragm.
    hu[_ellipse(x, y, 12.0 + 0.06 * (z + 250.0), 42.0, 12, 12)] = 210.0  # descending aorta
    hu[(z < -115) & _ellipse(x, y, -26, 16, 11, 10)] = 130.0  # inferior vena cava

    # Spine: vertebral bodies (cancellous bone in a cortical rim) between discs.
    disc = np.mod(z + 250.0, 30.0) < 6.0
    vertebra = _ellipse(x, y, 0, 62, 21, 19)
    hu[vertebra] = np.where(disc[vertebra], 90.0, 1000.0)
    hu[vertebra & _ellipse(x, y, 0, 62, 17, 15) & ~disc] = 300.0
    arch = _ellipse(x, y, 0, 93, 14, 13) & ~disc
    hu[arch] = 850.0
    hu[_ellipse(x, y, 0, 110, 4.5, 9) & ~disc] = 850.0  # spinous process
    hu[_ellipse(x, y, 0, 92, 9, 8)] = 20.0  # spinal canal
    return hu


# -- MR: sagittal T1-weighted head, arbitrary units --------------------------------
def _skull_base(y: np.ndarray) -> np.ndarray:
    """Height (z, mm) of the floor of the brain: high over the orbits, low at the back."""
    return -8.0 - 0.3 * y


def mr_signal(x: np.ndarray, y: np.ndarray, z: np.ndarray) -> np.ndarray:
    """Noise-free MR phantom signal at patient points (x, y, z)."""
    x, y, z = np.broadcast_arrays(x, y, z)
    s = np.zeros(x.shape)
    cranium = _rho(x, y, z, (0.0, 8.0, 38.0), (76.0, 90.0, 88.0))
    face = _rho(x, y, z, (0.0, -42.0, -20.0), (56.0, 58.0, 62.0))
    neck = (z < -25) & _ellipse(x, y, 0, 22, 56, 52)

    s[neck | (face <= 1.0)] = 1100.0  # subcutaneous fat
    s[(neck & _ellipse(x, y, 0, 22, 51, 47)) | (face <= 0.92)] = 520.0  # muscle
    s[neck & _ellipse(x, y, 0, 30, 13, 12)] = 650.0  # cervical vertebrae (fatty marrow)
    s[neck & _ellipse(x, y, 0, 48, 8, 8)] = 250.0  # CSF round the cord
    s[neck & _ellipse(x, y, 0, 48, 5, 5)] = 720.0  # cord
    s[cranium <= 1.0] = 1150.0  # scalp fat
    s[cranium <= 0.94] = 120.0  # skull: cortical bone is dark in T1
    s[(cranium <= 0.94) & (z < _skull_base(y) - 6.0)] = 480.0  # soft tissue under the skull base
    above_base = z > _skull_base(y)
    s[(cranium <= 0.89) & above_base] = 260.0  # CSF
    brain = (cranium <= 0.86) & (z > _skull_base(y) + 3.0)
    s[brain] = 620.0  # grey matter
    folds = 0.04 * np.sin(x / 6.0) * np.sin(y / 7.0) * np.sin(z / 5.0)
    s[brain & (cranium <= 0.72 + folds)] = 820.0  # white matter, with a folded border

    for side in (-1.0, 1.0):
        s[_ellipsoid(x, y, z, (side * 11.0, 8.0, 48.0), (7.0, 30.0, 11.0))] = 240.0  # lateral ventricles
    fossa = (cranium <= 0.86) & (z > _skull_base(y) - 22.0)
    s[_ellipsoid(x, y, z, (0.0, 58.0, -8.0), (46.0, 28.0, 22.0)) & fossa] = 640.0  # cerebellum
    s[_ellipsoid(x, y, z, (0.0, 55.0, -6.0), (28.0, 15.0, 11.0)) & fossa] = 800.0
    s[_ellipsoid(x, y, z, (0.0, 22.0, -18.0), (13.0, 13.0, 40.0))] = 760.0  # brainstem

    for side in (-1.0, 1.0):
        s[_ellipsoid(x, y, z, (side * 30.0, -56.0, 4.0), (18.0, 20.0, 15.0))] = 1100.0  # orbital fat
        s[_ellipsoid(x, y, z, (side * 30.0, -62.0, 4.0), (12.0, 12.0, 12.0))] = 180.0  # eye
    s[_ellipsoid(x, y, z, (0.0, -62.0, -22.0), (15.0, 24.0, 20.0))] = 0.0  # nasal cavity, air
    s[_ellipsoid(x, y, z, (0.0, -40.0, -58.0), (24.0, 28.0, 14.0))] = 700.0  # tongue

    shading = 1.0 + 0.12 * (z - 28.0) / 100.0 - 0.08 * (y / 100.0)  # receive-coil bias field
    return s * shading


# -- sampling ------------------------------------------------------------------------
def _geometry(spec: SeriesSpec) -> Geometry:
    if spec.geometry is None:
        raise ValueError(f"series {spec.name!r} has no patient geometry")
    return spec.geometry


def voxel_centres(spec: SeriesSpec) -> np.ndarray:
    """Patient coordinates of every voxel of ``spec``, ``(slices, rows, columns, 3)``."""
    return _geometry(spec).voxel_positions(spec.slices, spec.rows, spec.columns)


def _supersample(spec: SeriesSpec, field: Field) -> np.ndarray:
    """Average ``field`` over 2 x 2 x 2 points per voxel: partial-volume edges, as a scanner gives."""
    geometry = _geometry(spec)
    centres = voxel_centres(spec)
    along_row = np.asarray(geometry.row_cosines) * geometry.pixel_spacing[1] / 4.0
    along_column = np.asarray(geometry.column_cosines) * geometry.pixel_spacing[0] / 4.0
    along_normal = np.asarray(geometry.normal) * geometry.slice_thickness / 4.0
    total = np.zeros(centres.shape[:-1])
    for a in (-1.0, 1.0):
        for b in (-1.0, 1.0):
            for c in (-1.0, 1.0):
                p = centres + a * along_row + b * along_column + c * along_normal
                total += field(p[..., 0], p[..., 1], p[..., 2])
    return total / 8.0


def clean_ct_hu() -> np.ndarray:
    """The CT volume in HU before noise, ``(slices, rows, columns)``.

    Outside the circular reconstruction field every voxel is the padding
    value (-2000 stored, -3024 HU), set after the averaging so it stays exact.
    """
    hu = np.rint(_supersample(CT, ct_hu))
    centres = voxel_centres(CT)
    hu[np.hypot(centres[..., 0], centres[..., 1]) > RECONSTRUCTION_RADIUS] = PADDING_HU
    return hu


def make_ct(rng: np.random.Generator) -> np.ndarray:
    """Stored CT values: ``(HU + noise - intercept) / slope`` as int16; noise only inside the body."""
    hu = clean_ct_hu()
    centres = voxel_centres(CT)
    inside = _ellipse(centres[..., 0], centres[..., 1], 0, BODY[0], BODY[1], BODY[2])
    limit = NOISE_CLIP * CT_NOISE_HU
    noise = np.clip(rng.normal(0.0, CT_NOISE_HU, hu.shape), -limit, limit)
    hu = hu + np.rint(noise) * inside
    stored = np.rint((hu - CT.intercept) / CT.slope)
    return np.clip(stored, -32768, 32767).astype(np.int16)


def clean_mr() -> np.ndarray:
    """The MR volume before noise, ``(slices, rows, columns)``."""
    return np.rint(_supersample(MR, mr_signal))


def make_mr(rng: np.random.Generator) -> np.ndarray:
    """Stored MR values: magnitude of signal plus complex noise (Rician), uint16 in 12 bits.

    The background outside the head stays zero, as after the background
    masking many reconstructions apply; noise there would triple the file.
    """
    signal = clean_mr()
    limit = NOISE_CLIP * MR_NOISE
    real = signal + np.clip(rng.normal(0.0, MR_NOISE, signal.shape), -limit, limit)
    imag = np.clip(rng.normal(0.0, MR_NOISE, signal.shape), -limit, limit)
    magnitude = np.where(signal > 0, np.hypot(real, imag), 0.0)
    return np.clip(np.rint(magnitude), 0, 2**MR.bits_stored - 1).astype(np.uint16)


# -- colour test pattern --------------------------------------------------------------
#: SMPTE-order bars across the top 32 rows, 32 columns each.
COLOR_BARS: tuple[tuple[int, int, int], ...] = (
    (255, 255, 255),
    (255, 255, 0),
    (0, 255, 255),
    (0, 255, 0),
    (255, 0, 255),
    (255, 0, 0),
    (0, 0, 255),
    (0, 0, 0),
)
WHEEL_CENTRE = (136, 128)  # (row, column)
WHEEL_RADIUS = 96


def make_color() -> np.ndarray:
    """An RGB test pattern: colour bars, a hue/saturation wheel, a grey ramp."""
    rows, columns = COLOR.rows, COLOR.columns
    image = np.full((rows, columns, 3), 40, dtype=np.uint8)
    for k, rgb in enumerate(COLOR_BARS):
        image[:32, 32 * k : 32 * (k + 1)] = rgb
    r, c = np.mgrid[0:rows, 0:columns].astype(np.float64)
    dy, dx = r - WHEEL_CENTRE[0], c - WHEEL_CENTRE[1]
    radius = np.hypot(dx, dy)
    hue = (np.degrees(np.arctan2(-dy, dx)) % 360.0) / 360.0  # red at 3 o'clock, anticlockwise
    to_rgb = np.vectorize(colorsys.hsv_to_rgb)
    wheel = radius <= WHEEL_RADIUS
    red, green, blue = to_rgb(hue[wheel], radius[wheel] / WHEEL_RADIUS, 1.0)
    image[wheel] = np.rint(np.stack([red, green, blue], axis=-1) * 255.0).astype(np.uint8)
    image[rows - 16 :, :] = np.arange(columns, dtype=np.uint8)[None, :, None] * (256 // columns)
    return image[None]  # one frame


# -- output ---------------------------------------------------------------------------
def build() -> dict[str, np.ndarray]:
    """Every series' stored array, by series name."""
    rng = np.random.default_rng(SEED)
    return {CT.name: make_ct(rng), MR.name: make_mr(rng), COLOR.name: make_color()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=PACKAGE_DIR / "_data", help="folder for the .b64 files")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    specs = {spec.name: spec for spec in (CT, MR, COLOR)}
    for name, array in build().items():
        path = args.out / specs[name].data_file
        path.write_bytes(encode(array, specs[name]))
        size = path.stat().st_size
        print(f"{path}: {array.shape} {array.dtype} [{array.min()}, {array.max()}] {size} bytes")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
