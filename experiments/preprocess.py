"""Turn a photo or drawing of one digit into a 28x28 input laid out the way MNIST was made.

MNIST's digits are light ink on a black background; each was scaled, keeping its aspect ratio,
so that its longer side fills a 20x20 box (anti-aliasing makes the grey edges), then placed in a
28x28 field with its centre of mass on the field's centre.  ``to_mnist`` repeats those steps on
any greyscale picture, after deciding which of its two tones is the ink:

1. the background level is the median of a thin ring of border pixels;
2. the ink is whichever side of the background reaches further (darker or lighter), measured
   from a robust extreme, so both dark-on-light and light-on-dark pictures work;
3. the picture is rescaled to "ink amount" in [0, 1] (0 = background, 1 = full ink) and faint
   deviations below a noise floor (paper texture, shading, compression noise) are zeroed;
4. the bounding box of the pixels at least half-way to full ink is cropped, scaled so that its
   longer side is 20 px (bicubic, anti-aliased) and renormalised so its peak is 1;
5. it is pasted into 28x28, shifted by a whole number of pixels so that its centre of mass lands
   at (14, 14) - measured on the MNIST test set, the mean centre of mass is (13.99, 14.01).

Pixel values of the result match ``mnist_image / 255``: float32, background 0, ink up to 1.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np
import numpy.typing as npt
from PIL import Image, ImageOps, UnidentifiedImageError

__all__ = [
    "DIGIT_BOX",
    "FIELD",
    "ImageError",
    "load_grayscale",
    "preprocess",
    "to_mnist",
]

F32 = npt.NDArray[np.float32]
F64 = npt.NDArray[np.float64]

FIELD = 28  # side of an MNIST image
DIGIT_BOX = 20  # MNIST scaled each digit so that its longer side is this many pixels
CENTRE = 14.0  # target centre of mass (row, col); MNIST test-set mean is (13.99, 14.01)

# A picture whose ink differs from its background by less than this fraction of the full
# black-to-white range holds no digit we can trust: JPEG and sensor noise on a blank page stay
# within a few percent, while even a light pencil stroke photographed in dim light differs by
# 15% or more.
MIN_CONTRAST = 0.1
# After rescaling to ink amount (1 = the ink's level), deviations below this are paper
# texture, uneven lighting or noise, not ink: they are zeroed so that the field around the
# digit is black as in MNIST.  A fifth of the contrast keeps the stroke edges (partly covered
# pixels) while erasing shading up to a fifth as strong as the ink; round trips of MNIST
# digits through a 4x upscale come back equally well (median correlation 0.98) for 0.1-0.25.
NOISE_FLOOR = 0.2
# A pixel belongs to the digit's bounding box when it is at least half-way from background to
# ink: the level at which an anti-aliased edge pixel is more ink than paper.  MNIST's 20-pixel
# box held the binarised digit, whose outline is exactly this half-way contour.
INK_THRESHOLD = 0.5


class ImageError(ValueError):
    """A file cannot be used as a digit: unreadable, not an image, or holding no ink."""


def load_grayscale(path: str | os.PathLike[str]) -> F64:
    """Read an image file as float64 greyscale in [0, 1] (0 black, 1 white), shape (H, W).

    Any format and mode Pillow reads: RGB, greyscale, palette, 16-bit, with or without alpha;
    transparent pixels are composited on white, as an image viewer shows them.  The EXIF
    orientation of phone photos is applied.  Raises ``ImageError`` naming the file when it is
    missing, not an image, truncated or otherwise undecodable.
    """
    p = Path(path)
    try:
        with Image.open(p) as image:
            image.load()  # decode now: a truncated file fails here, inside this try
            upright = ImageOps.exif_transpose(image)
            return _gray_values(upright)
    except FileNotFoundError:
        raise ImageError(f"{p}: no such file") from None
    except IsADirectoryError:
        raise ImageError(f"{p}: is a directory, not an image file") from None
    except PermissionError:
        raise ImageError(f"{p}: permission denied") from None
    except UnidentifiedImageError:
        raise ImageError(
            f"{p}: not an image file Pillow can read (expected PNG, JPEG, BMP, GIF, ...)"
        ) from None
    except Image.DecompressionBombError as e:
        raise ImageError(f"{p}: image too large to decode safely ({e})") from None
    except (OSError, SyntaxError, ValueError, EOFError) as e:
        # Pillow reports truncated and corrupted data as OSError, SyntaxError or EOFError.
        raise ImageError(f"{p}: cannot decode the image, truncated or corrupted? ({e})") from None


def _gray_values(image: Image.Image) -> F64:
    """Greyscale values in [0, 1] of a decoded Pillow image, alpha composited on white."""
    has_alpha = "A" in image.getbands() or "transparency" in image.info
    if has_alpha:
        rgba = image.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        image = Image.alpha_composite(white, rgba)
    if image.mode in ("I", "F") or image.mode.startswith("I;16"):
        # 16-bit, 32-bit integer and float greyscale: Pillow's convert("L") would clip them.
        values = np.asarray(image, dtype=np.float64)
        if image.mode.startswith("I;16"):
            full_scale = 65535.0
        elif image.mode == "F" and values.max(initial=0.0) <= 1.0:
            full_scale = 1.0
        else:
            full_scale = 255.0 if values.max(initial=0.0) <= 255 else 65535.0
        return np.clip(values / full_scale, 0.0, 1.0)
    return np.asarray(image.convert("L"), dtype=np.float64) / 255.0


def _border_median(gray: F64) -> float:
    """Median of a ring of border pixels, 2% of the shorter side wide (at least 1 px)."""
    height, width = gray.shape
    ring = max(1, round(min(height, width) * 0.02))
    border = np.concatenate(
        [
            gray[:ring].ravel(),
            gray[-ring:].ravel(),
            gray[ring:-ring, :ring].ravel(),
            gray[ring:-ring, -ring:].ravel(),
        ]
    )
    return float(np.median(border))


def ink_amount(gray: F64, name: str = "image") -> F64:
    """Per-pixel amount of ink in [0, 1] (0 = background, 1 = the ink's level) of a greyscale
    picture, whichever of dark-on-light or light-on-dark it is, with faint noise zeroed.

    Raises ``ImageError`` (its message starting with ``name``) for a uniform or blank picture.
    """
    if gray.ndim != 2 or gray.size == 0:
        raise ImageError(f"{name}: expected a non-empty 2-D greyscale image, got {gray.shape}")
    low, high = float(gray.min()), float(gray.max())
    if high - low < 1 / 255:
        raise ImageError(f"{name}: image is uniform (every pixel is grey level {low:.2f})")
    background = _border_median(gray)
    # The ink's level is the k-th most extreme pixel on each side of the background, not the
    # most extreme one, so that a few specks of dust cannot set it.  k = sqrt(pixels) / 4 is
    # a quarter of a square image's side: a digit a quarter of the picture tall, drawn with a
    # 1-pixel line, still covers more pixels than that.
    k = max(1, math.ceil(math.sqrt(gray.size) / 4))
    flat = gray.ravel()
    darkest = float(np.partition(flat, k - 1)[k - 1])
    lightest = float(np.partition(flat, flat.size - k)[flat.size - k])
    dark_contrast, light_contrast = background - darkest, lightest - background
    contrast = max(dark_contrast, light_contrast)
    if contrast < MIN_CONTRAST:
        raise ImageError(
            f"{name}: no digit found, the image looks blank: nothing differs from the "
            f"background (grey level {background:.2f}) by more than {contrast:.2f}, "
            f"below the {MIN_CONTRAST} needed to tell ink from noise"
        )
    deviation = background - gray if dark_contrast > light_contrast else gray - background
    ink = np.clip(deviation / contrast, 0.0, 1.0)
    return np.clip((ink - NOISE_FLOOR) / (1.0 - NOISE_FLOOR), 0.0, 1.0)


def _bounding_box(mask: npt.NDArray[np.bool_]) -> tuple[slice, slice]:
    """Row and column slices of the smallest box holding every True pixel of ``mask``."""
    rows = np.flatnonzero(mask.any(axis=1))
    cols = np.flatnonzero(mask.any(axis=0))
    return slice(int(rows[0]), int(rows[-1]) + 1), slice(int(cols[0]), int(cols[-1]) + 1)


def _fit_in_box(digit: F64, box: int) -> F64:
    """Scale ``digit`` so its longer side is ``box``, keeping its aspect ratio; the shorter
    side is rounded and at least 1 px.

    Pillow's bicubic filter widens with the reduction, so shrinking averages over each output
    pixel's footprint (anti-aliasing), and it enlarges tiny digits smoothly.  It fits MNIST
    round trips as well as Lanczos (median correlation 0.979 against 0.978) without Lanczos'
    second lobe, which leaves faint grey ghosts of 0.01-0.02 beside straight strokes.
    """
    height, width = digit.shape
    scale = box / max(height, width)
    size = (max(1, round(width * scale)), max(1, round(height * scale)))  # Pillow: (W, H)
    resized = Image.fromarray(digit.astype(np.float32)).resize(size, Image.Resampling.BICUBIC)
    return np.clip(np.asarray(resized, dtype=np.float64), 0.0, 1.0)  # bicubic dips below 0


def _centre_of_mass(image: F64) -> tuple[float, float]:
    """(row, col) centre of mass of a non-negative image with positive total."""
    total = image.sum()
    rows = np.arange(image.shape[0]) @ image.sum(axis=1) / total
    cols = np.arange(image.shape[1]) @ image.sum(axis=0) / total
    return float(rows), float(cols)


def _paste_centred(digit: F64, field: int) -> F64:
    """Place ``digit`` in a ``field`` x ``field`` black image, shifted by whole pixels so its
    centre of mass is nearest ``CENTRE``, but never so far that part of it is cut off."""
    height, width = digit.shape
    com_row, com_col = _centre_of_mass(digit)
    top = min(max(math.floor(CENTRE - com_row + 0.5), 0), field - height)
    left = min(max(math.floor(CENTRE - com_col + 0.5), 0), field - width)
    out = np.zeros((field, field))
    out[top : top + height, left : left + width] = digit
    return out


def to_mnist(gray: F64, name: str = "image") -> F32:
    """The MNIST-style (28, 28) float32 input in [0, 1] for a greyscale picture of one digit.

    ``gray`` is (H, W) in [0, 1] as from ``load_grayscale``; ``name`` prefixes error messages.
    Raises ``ImageError`` when the picture is uniform or holds no ink.
    """
    ink = ink_amount(gray, name)
    mask = ink >= INK_THRESHOLD
    if not mask.any():  # unreachable while the ink level itself maps to 1; kept as a guard
        raise ImageError(f"{name}: no digit found, no pixel is more ink than background")
    rows, cols = _bounding_box(mask)
    digit = _fit_in_box(ink[rows, cols], DIGIT_BOX)
    peak = digit.max()
    if peak <= 0:
        raise ImageError(f"{name}: no digit found, the ink vanished when scaled to 20x20")
    # MNIST digits all peak at full ink (254 or 255); a thin stroke averaged down does not.
    return (_paste_centred(digit / peak, FIELD)).astype(np.float32)


def preprocess(path: str | os.PathLike[str]) -> F32:
    """``to_mnist(load_grayscale(path))``: the MNIST-style input for an image file.

    Raises ``ImageError`` naming the file for unreadable files and pictures with no digit.
    """
    return to_mnist(load_grayscale(path), name=str(path))
