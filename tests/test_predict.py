"""Specification of ``experiments/preprocess.py`` (picture of a digit -> MNIST-style 28x28)
and of the ``experiments/predict.py`` command that classifies such pictures."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from experiments import model, predict, train
from experiments import preprocess as pp
from tinygrad_np import checkpoint
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
    # best-shift correlation 0.83 (a thin "1").  Errors of 10% drop the median well below
    # 0.95: a box of 18 or 22 px to 0.83 and 0.82, a width squeezed by 3/4 to 0.72.
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
    "sixteen_bit_grey": lambda picture: Image.fromarray(
        np.asarray(picture).astype(np.uint16) * 257  # 0-255 -> 0-65535
    ),
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


def test_a_sideways_photo_is_turned_upright_by_its_exif_orientation(
    tmp_path: Path, mnist_test: tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]
) -> None:
    picture = as_picture(mnist_test[0][0])
    reference = pp.preprocess(save(picture, tmp_path / "upright.png"))
    # Phones store the sensor's pixels and an EXIF tag saying how to turn them: orientation
    # 6 means "rotate 90 degrees clockwise to view".
    exif = Image.Exif()
    exif[0x0112] = 6
    sideways = tmp_path / "sideways.png"
    picture.transpose(Image.Transpose.ROTATE_90).save(sideways, exif=exif)
    assert np.abs(pp.preprocess(sideways) - reference).max() < 1e-6


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
    # change, which leaves correlation 0.88 at worst over those 300 digits.
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
    # per pixel: the median correlation over 100 digits is 0.99999+.  Up to whole-pixel
    # rounding, that is: it can move the centre of mass or a 13.5-px-wide digit's rounded
    # width by a pixel (2 digits in 100; the worst correlates 0.90 at its best shift).
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
        # Same digit: measured best-shift correlation 0.90 or more over 100 digits (the
        # residue is whole-pixel rounding of the placement or of the width, as for JPEG).
        assert best_correlation_within_one_pixel(out, clean) > 0.85
        # Shadow (at most 0.07 of the contrast) and noise (0.03 per pixel) stay under the noise
        # floor: nothing lights up more than a pixel away from where the clean digit has ink.
        # ("Nothing": under one 8-bit grey level, MNIST's resolution; the resampling filter's
        # float32 arithmetic leaves dust of ~1e-6 beside strokes.)
        near_ink = np.zeros_like(clean, dtype=bool)
        for dr in (-1, 0, 1):
            for dc in (-1, 0, 1):
                near_ink |= np.roll(clean > 0, (dr, dc), axis=(0, 1))
        assert out[~near_ink].max() < 1 / 255


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


# --- the predict command --------------------------------------------------------------------

RANKING_LINE = re.compile(r"^(?P<name>.+): " + ", ".join([r"(\d) \((\d{1,3}\.\d)%\)"] * 3) + "$")


@pytest.fixture(scope="module")
def trained_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A checkpoint from the real training script, made small: 2 epochs on 5000 digits
    (about 3 s on an idle machine; 88% accuracy on the first 5000 test digits)."""
    out = tmp_path_factory.mktemp("runs")
    result = train.run_training(
        ["--limit", "5000", "--epochs", "2", "--out", str(out), "--no-plots"]
    )
    return result.run / "checkpoint.npz"


def run_predict(
    capsys: pytest.CaptureFixture[str], *argv: str | Path
) -> tuple[int, list[str], str]:
    """Run the command; its exit status, stdout lines and stderr after the "Model: ..." line
    (which must come first whenever a model was loaded)."""
    capsys.readouterr()  # drop anything printed before (e.g. by the training fixture)
    status = predict.main([str(arg) for arg in argv])
    out, err = capsys.readouterr()
    if err.startswith("Model: "):
        err = err.split("\n", 1)[1]
    else:
        assert out == "", "pictures were classified without saying by which model"
    return status, out.splitlines(), err


def parse_ranking(line: str) -> tuple[str, list[int], list[float]]:
    match = RANKING_LINE.match(line)
    assert match is not None, f"not a ranking line: {line!r}"
    groups = match.groups()
    return groups[0], [int(d) for d in groups[1::2]], [float(p) / 100 for p in groups[2::2]]


def test_prints_the_top_3_digits_with_their_softmax_probabilities(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    trained_checkpoint: Path,
    mnist_test: tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]],
) -> None:
    path = save(as_picture(mnist_test[0][0]), tmp_path / "seven.png")
    status, lines, err = run_predict(capsys, path, "--checkpoint", trained_checkpoint)
    assert status == 0 and err == ""
    assert len(lines) == 1
    name, digits, probabilities = parse_ranking(lines[0])
    assert name == str(path)
    assert len(set(digits)) == 3
    assert probabilities == sorted(probabilities, reverse=True)
    # Each printed percentage is rounded to 0.05% at most.
    assert sum(probabilities) <= 1 + 3 * 0.0005
    # They are the softmax of the model's logits for the preprocessed picture.
    params = predict.load_params(trained_checkpoint)
    logits = model.forward(params, pp.preprocess(path).reshape(1, 784))[0]
    expected = np.exp(logits - logits.max()) / np.exp(logits - logits.max()).sum()
    assert digits == list(np.argsort(-expected)[:3])
    assert probabilities == pytest.approx(expected[digits], abs=0.0005)


def test_confidently_known_digits_are_still_recognised_from_their_pictures(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    trained_checkpoint: Path,
    mnist_test: tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]],
) -> None:
    x_test, y_test = mnist_test
    params = predict.load_params(trained_checkpoint)
    probabilities = model.probabilities(params, model.preprocess(x_test[:N_ROUND_TRIP]))
    # Digits the model gets right with 90% confidence from MNIST's own pixels: the pictures
    # must be classified right too.  (Measured on 1000 test digits: 0 of 536 such digits lost;
    # over all 1000, the round trip costs 0.2 points of accuracy, 89.9% -> 89.7%.)
    known = [
        i
        for i in range(N_ROUND_TRIP)
        if probabilities[i].max() >= 0.9 and probabilities[i].argmax() == y_test[i]
    ]
    assert len(known) >= 20  # enough for the check to mean something
    paths = [save(as_picture(x_test[i]), tmp_path / f"test{i}.png") for i in known]
    status, lines, err = run_predict(capsys, *paths, "--checkpoint", trained_checkpoint)
    assert status == 0 and err == ""
    assert [parse_ranking(line)[1][0] for line in lines] == [int(y_test[i]) for i in known]


def test_show_saves_a_png_of_each_picture_beside_its_28x28_input(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    trained_checkpoint: Path,
    mnist_test: tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]],
) -> None:
    paths = [save(as_picture(mnist_test[0][i]), tmp_path / f"{i}.png") for i in range(2)]
    heights = []
    for count in (1, 2):
        show = tmp_path / "figures" / f"inputs{count}.png"
        status, lines, _ = run_predict(
            capsys, *paths[:count], "--checkpoint", trained_checkpoint, "--show", show
        )
        assert status == 0
        assert lines[-1] == f"saved {show}"
        with Image.open(show) as figure:
            assert figure.format == "PNG"
            heights.append(figure.height)
    assert heights[1] == 2 * heights[0]  # one row per picture


def test_show_writes_a_png_whatever_the_name_and_reports_an_unwritable_path(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    trained_checkpoint: Path,
    mnist_test: tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]],
) -> None:
    path = save(as_picture(mnist_test[0][0]), tmp_path / "d.png")
    status, _, _ = run_predict(
        capsys, path, "--checkpoint", trained_checkpoint, "--show", tmp_path / "figure"
    )
    assert status == 0
    with Image.open(tmp_path / "figure") as figure:
        assert figure.format == "PNG"
    not_a_directory = tmp_path / "d.png" / "figure.png"
    status, lines, err = run_predict(
        capsys, path, "--checkpoint", trained_checkpoint, "--show", not_a_directory
    )
    assert status == 2
    assert len(lines) == 1  # the prediction is still printed
    assert err.startswith(f"error: cannot save --show figure {not_a_directory}: ")
    assert "Traceback" not in err


def test_a_float64_checkpoint_is_accepted(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], trained_checkpoint: Path
) -> None:
    params64 = {k: v.astype(np.float64) for k, v in predict.load_params(trained_checkpoint).items()}
    checkpoint.save(tmp_path / "f64.npz", params64)
    page = Image.new("L", (100, 100), 255)
    page.paste(0, (45, 10, 55, 90))  # a "1"
    path = save(page, tmp_path / "one.png")
    status32, lines32, _ = run_predict(capsys, path, "--checkpoint", trained_checkpoint)
    status64, lines64, _ = run_predict(capsys, path, "--checkpoint", tmp_path / "f64.npz")
    assert status32 == status64 == 0
    _, digits32, probabilities32 = parse_ranking(lines32[0])
    _, digits64, probabilities64 = parse_ranking(lines64[0])
    # The float64 copy of float32 weights is exact; float32 arithmetic then differs by ~1e-6,
    # which can move a printed 0.1% by one unit at most.
    assert digits64 == digits32
    assert probabilities64 == pytest.approx(probabilities32, abs=0.001 + 1e-9)


def test_top_classes_ranks_the_most_probable_first() -> None:
    probabilities = np.array([0.05, 0.5, 0.0, 0.2, 0.25])
    assert predict.top_classes(probabilities) == [(1, 0.5), (4, 0.25), (3, 0.2)]
    assert predict.top_classes(probabilities, k=1) == [(1, 0.5)]


# --- the command's errors -------------------------------------------------------------------


def unusable_files(tmp_path: Path) -> dict[str, tuple[Path, str]]:
    """name -> (file, the problem the error must state)."""
    truncated = tmp_path / "truncated.png"
    whole = save(Image.radial_gradient("L").resize((200, 200)), tmp_path / "whole.png")
    truncated.write_bytes(whole.read_bytes()[:-200])
    not_image = tmp_path / "not_image.png"
    not_image.write_bytes(b"\x00\x01 not an image at all" * 10)
    return {
        "missing": (tmp_path / "missing.png", "no such file"),
        "not_image": (not_image, "not an image file"),
        "truncated": (truncated, "cannot decode the image, truncated or corrupted"),
        "blank": (save(Image.new("L", (300, 300), 255), tmp_path / "blank.png"), "uniform"),
        "grey": (save(Image.new("L", (50, 80), 128), tmp_path / "grey.png"), "uniform"),
    }


@pytest.mark.parametrize("case", ["missing", "not_image", "truncated", "blank", "grey"])
def test_an_unusable_picture_gets_an_error_naming_it_and_exit_status_2(
    case: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], trained_checkpoint: Path
) -> None:
    path, problem = unusable_files(tmp_path)[case]
    status, lines, err = run_predict(capsys, path, "--checkpoint", trained_checkpoint)
    assert status == 2
    assert lines == []
    assert err.startswith(f"error: {path}: ") and problem in err
    assert "Traceback" not in err


def test_the_good_pictures_are_still_classified_when_one_is_bad(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    trained_checkpoint: Path,
    mnist_test: tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]],
) -> None:
    good = [save(as_picture(mnist_test[0][i]), tmp_path / f"good{i}.png") for i in range(2)]
    bad = tmp_path / "missing.png"
    status, lines, err = run_predict(
        capsys, good[0], bad, good[1], "--checkpoint", trained_checkpoint
    )
    assert status == 2
    assert [parse_ranking(line)[0] for line in lines] == [str(good[0]), str(good[1])]
    assert err == f"error: {bad}: no such file\n"


def test_a_missing_checkpoint_says_how_to_create_one(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    mnist_test: tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]],
) -> None:
    path = save(as_picture(mnist_test[0][0]), tmp_path / "d.png")
    missing = tmp_path / "nowhere" / "checkpoint.npz"
    status, lines, err = run_predict(capsys, path, "--checkpoint", missing)
    assert status == 2 and lines == []
    assert f"checkpoint {missing} does not exist" in err
    assert "python experiments/train.py" in err
    assert "Traceback" not in err


def invalid_checkpoints(tmp_path: Path) -> dict[str, tuple[Path, str]]:
    """name -> (file, the problem the error must state)."""
    garbage = tmp_path / "garbage.npz"
    garbage.write_bytes(b"PK\x03\x04 this is no zip archive")
    plain = tmp_path / "plain.npz"
    np.savez(plain, W1=np.zeros((784, 128), np.float32))
    wrong_shape = tmp_path / "wrong_shape.npz"
    params = model.zeros_params()
    checkpoint.save(wrong_shape, {**params, "W1": np.zeros((784, 64), np.float32)})
    missing_entry = tmp_path / "missing_entry.npz"
    checkpoint.save(missing_entry, {k: v for k, v in params.items() if k != "b2"})
    return {
        "garbage": (garbage, "not a readable .npz file"),
        "plain_npz": (plain, "not a file written by tinygrad_np.checkpoint"),
        "wrong_shape": (wrong_shape, "'params/W1' has shape (784, 64), expected (784, 128)"),
        "missing_entry": (missing_entry, "missing entry 'params/b2'"),
    }


@pytest.mark.parametrize("case", ["garbage", "plain_npz", "wrong_shape", "missing_entry"])
def test_an_invalid_checkpoint_says_what_is_wrong_and_how_to_create_one(
    case: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    mnist_test: tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]],
) -> None:
    path = save(as_picture(mnist_test[0][0]), tmp_path / "d.png")
    bad, problem = invalid_checkpoints(tmp_path)[case]
    status, lines, err = run_predict(capsys, path, "--checkpoint", bad)
    assert status == 2 and lines == []
    assert problem in err
    # A file that loads says which model it should have held; one that does not cannot.
    held = "a trained model" if case in ("garbage", "plain_npz") else "the 784-128-10 MLP"
    assert f"is not a checkpoint of {held}" in err
    assert "python experiments/train.py" in err
    assert "Traceback" not in err


def test_says_which_checkpoint_it_used_and_that_models_test_accuracy(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    trained_checkpoint: Path,
    mnist_test: tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]],
) -> None:
    path = save(as_picture(mnist_test[0][0]), tmp_path / "seven.png")
    accuracy = checkpoint.load(trained_checkpoint).metadata["history"][-1]["test_accuracy"]
    for given in (trained_checkpoint, trained_checkpoint.parent):  # the file or its run
        capsys.readouterr()
        assert predict.main([str(path), "--checkpoint", str(given)]) == 0
        assert capsys.readouterr().err == (
            f"Model: {trained_checkpoint} (784-128-10 MLP, trial run of 2 epochs on 5000 digits, "
            f"test accuracy {accuracy:.2%} of the first 5000)\n"
        )
