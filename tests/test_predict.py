"""Specification of ``experiments/preprocess.py`` (picture of a digit -> MNIST-style 28x28)
and of the ``experiments/predict.py`` command that classifies such pictures."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from experiments import preprocess as pp
from tinygrad_np.datasets import mnist

N_ROUND_TRIP = 100  # MNIST test digits pushed through the picture round trip


@pytest.fixture(scope="module")
def mnist_test() -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]:
    _, _, x_test, y_test = mnist()
    return x_test, y_test


def as_picture(digit: np.ndarray[Any, Any]) -> Image.Image:
    """An MNIST digit as a user might hand it in: upscaled 4x (bicubic) to 112x112, dark ink
    on a white 200x150 canvas, off-centre."""
    ink = Image.fromarray(255 - digit).resize((112, 112), Image.Resampling.BICUBIC)
    canvas = Image.new("L", (200, 150), 255)
    canvas.paste(ink, (50, 20))
    return canvas


def save(image: Image.Image, path: Path) -> Path:
    image.save(path)
    return path


def correlation(a: np.ndarray[Any, Any], b: np.ndarray[Any, Any]) -> float:
    return float(np.corrcoef(a.ravel(), b.ravel())[0, 1])


def best_correlation_within_one_pixel(a: np.ndarray[Any, Any], b: np.ndarray[Any, Any]) -> float:
    """Correlation of ``a`` with ``b`` at the best whole-pixel shift of ``a`` by at most 1."""
    return max(
        correlation(np.roll(a, (dr, dc), axis=(0, 1)), b) for dr in (-1, 0, 1) for dc in (-1, 0, 1)
    )


def smallest_max_difference_within_one_pixel(
    a: np.ndarray[Any, Any], b: np.ndarray[Any, Any]
) -> float:
    """Largest pixel difference of ``a`` and ``b`` at the best whole-pixel shift of ``a`` by at
    most 1.  MNIST places a digit by rounding its centre of mass to a whole pixel, so two
    nearly equal pictures whose centre of mass straddles a half pixel are placed 1 px apart."""
    return min(
        float(np.abs(np.roll(a, (dr, dc), axis=(0, 1)) - b).max())
        for dr in (-1, 0, 1)
        for dc in (-1, 0, 1)
    )


def centre_of_mass(image: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    rows, cols = np.indices(image.shape)
    return np.array([(rows * image).sum(), (cols * image).sum()]) / image.sum()


# --- the picture -> MNIST round trip ------------------------------------------------------


def test_mnist_digits_drawn_as_pictures_come_back_as_the_mnist_images(
    tmp_path: Path, mnist_test: tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]
) -> None:
    x_test, _ = mnist_test
    unshifted, best_shift = [], []
    for i in range(N_ROUND_TRIP):
        out = pp.preprocess(save(as_picture(x_test[i]), tmp_path / f"{i}.png"))
        assert out.shape == (28, 28) and out.dtype == np.float32
        assert out.min() == 0.0 and out.max() == pytest.approx(1.0)
        original = x_test[i] / 255.0
        unshifted.append(correlation(out, original))
        best_shift.append(best_correlation_within_one_pixel(out, original))
        # Whole-pixel placement puts the centre of mass within half a pixel of (14, 14).
        assert np.all(np.abs(centre_of_mass(out) - 14.0) <= 0.5 + 1e-9)
    # The round trip resamples: the crop lands at a sub-pixel phase of MNIST's grid, so the
    # centre of mass can round to the neighbouring whole pixel, and thin strokes lose some
    # sharpness.  Measured on 1000 digits: median unshifted correlation 0.98, worst
    # best-shift correlation 0.83 (a thin "1").  A wrong scale, aspect ratio or polarity drops
    # the median below 0.5.
    assert np.median(unshifted) > 0.95
    assert min(best_shift) > 0.8


def test_the_digit_is_scaled_so_its_longer_side_spans_20_pixels(tmp_path: Path) -> None:
    # A 60x180 black bar (tall) on a 400x300 white page: it must become 20 tall, 7 wide
    # (180 -> 20 scales 60 to 6.67, rounded), with its centre at (14, 14).
    page = Image.new("L", (400, 300), 255)
    page.paste(0, (100, 50, 160, 230))
    out = pp.preprocess(save(page, tmp_path / "bar.png"))
    rows = np.flatnonzero(out.max(axis=1) > 0)
    cols = np.flatnonzero(out.max(axis=0) > 0)
    assert len(rows) == 20 and len(cols) == 7
    assert np.allclose(centre_of_mass(out), 14.0, atol=0.5)


def test_a_small_digit_is_enlarged_to_the_same_20_pixel_box(
    tmp_path: Path, mnist_test: tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]
) -> None:
    x_test, _ = mnist_test
    tiny = Image.new("L", (60, 60), 255)
    tiny.paste(Image.fromarray(255 - x_test[0]).resize((14, 14), Image.Resampling.LANCZOS), (5, 30))
    out = pp.preprocess(save(tiny, tmp_path / "tiny.png"))
    assert (
        max(
            np.ptp(np.flatnonzero(out.max(axis=1) > 0)), np.ptp(np.flatnonzero(out.max(axis=0) > 0))
        )
        + 1
        == 20
    )
    # Upscaling 7 -> 10 MNIST pixels' worth loses detail the 14-px picture never had.
    assert best_correlation_within_one_pixel(out, x_test[0] / 255.0) > 0.8


# --- the same digit in every colour scheme and format gives the same input -----------------


def linear_blend(picture: Image.Image, paper: Sequence[float], pen: Sequence[float]) -> Image.Image:
    """The picture redrawn with pen colour where it is black and paper colour where white
    (colours as 0-1 RGB), rounded to 8 bits: luminance stays a linear function of the ink."""
    white = np.asarray(picture, dtype=np.float64)[..., None] / 255.0
    rgb = white * np.asarray(paper) + (1 - white) * np.asarray(pen)
    return Image.fromarray(np.round(255 * rgb).astype(np.uint8))


def light_on_dark(picture: Image.Image) -> Image.Image:
    return Image.eval(picture, lambda v: 255 - v)


def transparent_background(picture: Image.Image) -> Image.Image:
    """Black ink whose opacity is the ink's darkness, on a fully transparent background:
    composited on white it is the original picture."""
    rgba = Image.new("RGBA", picture.size, (0, 0, 0, 0))
    rgba.putalpha(light_on_dark(picture))
    return rgba


# Lossless ways of storing the same dark-on-light greyscale picture.
EXACT_VARIANTS: dict[str, Callable[[Image.Image], Image.Image]] = {
    "light_on_dark": light_on_dark,
    "transparent_background": transparent_background,
    "rgb": lambda picture: picture.convert("RGB"),
    "grey_palette": lambda picture: picture.convert("P"),
}
# The same picture in other colours, rounded to 8 bits.
BLENDED_VARIANTS: dict[str, Callable[[Image.Image], Image.Image]] = {
    "blue_ink_on_cream_paper": lambda picture: linear_blend(
        picture, (0.98, 0.94, 0.82), (0.08, 0.12, 0.55)
    ),
    # Paper darker than mid-grey: the polarity comes from which side of the background the ink
    # lies, not from whether the background is light.
    "dim_photo": lambda picture: linear_blend(picture, (0.45,) * 3, (0.1,) * 3),
    "chalk_on_blackboard": lambda picture: linear_blend(picture, (0.3,) * 3, (0.8,) * 3),
}


@pytest.mark.parametrize("variant", sorted(EXACT_VARIANTS))
def test_lossless_variants_give_exactly_the_input_of_dark_on_light_grey(
    variant: str, tmp_path: Path, mnist_test: tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]
) -> None:
    x_test, _ = mnist_test
    for i in range(5):
        picture = as_picture(x_test[i])
        reference = pp.preprocess(save(picture, tmp_path / "ref.png"))
        out = pp.preprocess(save(EXACT_VARIANTS[variant](picture), tmp_path / "variant.png"))
        # Equal grey levels up to float rounding (1 - v/255 against (255 - v)/255).
        assert np.abs(out - reference).max() < 1e-6


@pytest.mark.parametrize("variant", sorted(BLENDED_VARIANTS))
def test_other_colours_give_the_same_digit_up_to_whole_pixel_rounding(
    variant: str, tmp_path: Path, mnist_test: tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]
) -> None:
    x_test, _ = mnist_test
    best = []
    for i in range(5):
        picture = as_picture(x_test[i])
        reference = pp.preprocess(save(picture, tmp_path / "ref.png"))
        out = pp.preprocess(save(BLENDED_VARIANTS[variant](picture), tmp_path / "variant.png"))
        best.append(best_correlation_within_one_pixel(out, reference))
    # Rounding the blend to 8 bits moves grey levels by up to 1/(255 contrast) of the ink
    # (1.1% for the dim photo).  Usually that changes nothing visible (median correlation
    # 0.99999 over 300 digits), but an edge pixel can cross the bounding-box threshold, or a
    # centre of mass or a scaled width at a half pixel can round the other way: a whole-pixel
    # change, which leaves correlation 0.875 at worst over those 300 digits.
    assert min(best) > 0.85
    assert np.median(best) > 0.99


def test_a_tightly_cropped_picture_with_ink_touching_its_edges(
    tmp_path: Path, mnist_test: tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]
) -> None:
    x_test, _ = mnist_test
    for i in range(10):
        picture = as_picture(x_test[i])
        reference = pp.preprocess(save(picture, tmp_path / "ref.png"))
        ink_box = Image.eval(picture, lambda v: 255 - v).getbbox()
        out = pp.preprocess(save(picture.crop(ink_box), tmp_path / "tight.png"))
        # The border is then partly ink, but mostly paper, so its median is still the paper.
        assert smallest_max_difference_within_one_pixel(out, reference) < 1e-6


def test_a_jpeg_gives_nearly_the_same_input_as_the_png(
    tmp_path: Path, mnist_test: tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]
) -> None:
    x_test, _ = mnist_test
    picture = as_picture(x_test[0])
    png = pp.preprocess(save(picture, tmp_path / "d.png"))
    jpeg_path = tmp_path / "d.jpg"
    picture.save(jpeg_path, quality=75)
    # JPEG's ringing around strokes is mostly under the noise floor, the rest is a few percent
    # per pixel: the median correlation over 100 digits is 0.99999.  Up to whole-pixel
    # rounding, that is: it can move the centre of mass or a 13.5-px-wide digit's rounded
    # width by a pixel (3 digits in 100; the worst correlates 0.89 at its best shift).
    assert best_correlation_within_one_pixel(pp.preprocess(jpeg_path), png) > 0.85


def test_a_grey_noisy_unevenly_lit_photo_gives_the_clean_digit_on_a_black_field(
    tmp_path: Path, mnist_test: tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]
) -> None:
    x_test, _ = mnist_test
    rng = np.random.default_rng(0)
    for i in range(10):
        paper = np.asarray(as_picture(x_test[i]), dtype=np.float64) / 255.0  # 1 = paper
        shadow = 0.1 * np.linspace(0, 1, paper.shape[1])[None, :]  # darker towards the right
        noise = rng.normal(0, 0.02, paper.shape)  # sensor noise, 5 grey levels
        photo = 0.15 + 0.75 * paper - shadow + noise  # grey paper (0.8), grey ink (0.15)
        photo_path = save(
            Image.fromarray(np.round(photo * 255).astype(np.uint8)), tmp_path / "p.png"
        )
        out = pp.preprocess(photo_path)
        clean = pp.preprocess(save(as_picture(x_test[i]), tmp_path / "clean.png"))
        # Same digit: measured best-shift correlation 0.89 or more over 100 digits (the
        # residue is whole-pixel rounding of the placement or of the width, as for JPEG).
        assert best_correlation_within_one_pixel(out, clean) > 0.85
        # Shadow (at most 0.07 of the contrast) and noise (0.03 per pixel) stay under the noise
        # floor: nothing lights up more than a pixel away from where the clean digit has ink.
        near_ink = np.zeros_like(clean, dtype=bool)
        for dr in (-1, 0, 1):
            for dc in (-1, 0, 1):
                near_ink |= np.roll(clean > 0, (dr, dc), axis=(0, 1))
        assert not out[~near_ink].any()


# --- pictures that cannot be used ---------------------------------------------------------


def test_a_missing_file_is_named_in_the_error(tmp_path: Path) -> None:
    with pytest.raises(pp.ImageError, match=r"nope\.png: no such file"):
        pp.preprocess(tmp_path / "nope.png")


def test_a_file_that_is_not_an_image_is_named_in_the_error(tmp_path: Path) -> None:
    path = tmp_path / "notes.png"
    path.write_text("these are not pixels\n")
    with pytest.raises(pp.ImageError, match=r"notes\.png: not an image file"):
        pp.preprocess(path)


def test_a_directory_is_named_in_the_error(tmp_path: Path) -> None:
    with pytest.raises(pp.ImageError, match="is a directory"):
        pp.preprocess(tmp_path)


def test_a_truncated_png_is_named_in_the_error(
    tmp_path: Path, mnist_test: tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]
) -> None:
    whole = save(as_picture(mnist_test[0][0]), tmp_path / "whole.png").read_bytes()
    path = tmp_path / "cut.png"
    path.write_bytes(whole[: len(whole) // 2])
    with pytest.raises(pp.ImageError, match=r"cut\.png: cannot decode the image, truncated"):
        pp.preprocess(path)


def test_a_blank_white_page_has_no_digit(tmp_path: Path) -> None:
    path = save(Image.new("L", (300, 300), 255), tmp_path / "blank.png")
    with pytest.raises(pp.ImageError, match=r"blank\.png: image is uniform"):
        pp.preprocess(path)


def test_a_uniform_grey_image_has_no_digit(tmp_path: Path) -> None:
    path = save(Image.new("RGB", (64, 48), (128, 128, 128)), tmp_path / "grey.png")
    with pytest.raises(pp.ImageError, match=r"grey\.png: image is uniform \(every pixel is grey"):
        pp.preprocess(path)


def test_a_fully_transparent_image_has_no_digit(tmp_path: Path) -> None:
    path = save(Image.new("RGBA", (64, 64), (0, 0, 0, 0)), tmp_path / "clear.png")
    with pytest.raises(pp.ImageError, match=r"clear\.png: image is uniform"):
        pp.preprocess(path)


def test_a_page_of_faint_noise_has_no_digit(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    noise = np.clip(np.round(rng.normal(230, 4, (200, 200))), 0, 255).astype(np.uint8)
    path = save(Image.fromarray(noise), tmp_path / "noise.png")
    with pytest.raises(pp.ImageError, match=r"noise\.png: no digit found, the image looks blank"):
        pp.preprocess(path)


def test_a_few_dust_specks_on_a_blank_page_are_not_a_digit(tmp_path: Path) -> None:
    page = Image.new("L", (300, 300), 255)
    for x, y in [(10, 20), (150, 150), (280, 40)]:
        page.putpixel((x, y), 0)
    with pytest.raises(pp.ImageError, match="no digit found"):
        pp.preprocess(save(page, tmp_path / "dust.png"))
