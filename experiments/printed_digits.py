"""How trained models read digits that are not MNIST's: printed ones, in several typefaces.

    python experiments/printed_digits.py runs/mnist/<MLP run> runs/mnist/<CNN run>

Writes the digits 0-9 in nine typefaces matplotlib ships (DejaVu, STIX and Computer
Modern, upright, bold and italic) as black-on-white pictures into ``--out`` (default
``runs/printed_digits/``), and as handwriting the first ``--handwritten`` MNIST test digits
drawn as pictures (enlarged 4x and placed off-centre on a white page). Each model (a
checkpoint, run directory or runs directory, as for ``predict.py``) reads every picture
through ``predict.py``'s own steps, and a table says which digits it got right:

    pictures            784-128-10 MLP   convolutional network
    DejaVu Sans Bold    9/10 (1 as 2)    10/10
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: make the repository root importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


from experiments import predict, runs
from experiments.preprocess import load_grayscale, to_mnist
from tinygrad_np.datasets import mnist

TYPEFACES = {
    "DejaVu Sans": "DejaVuSans.ttf",
    "DejaVu Sans Bold": "DejaVuSans-Bold.ttf",  # its 1 has a foot (a base serif)
    "DejaVu Sans Mono Bold": "DejaVuSansMono-Bold.ttf",
    "DejaVu Serif": "DejaVuSerif.ttf",
    "DejaVu Serif Bold Italic": "DejaVuSerif-BoldItalic.ttf",
    "STIX": "STIXGeneral.ttf",
    "STIX Bold Italic": "STIXGeneralBolIta.ttf",
    "Computer Modern": "cmr10.ttf",
    "Computer Modern Italic": "cmti10.ttf",
}
HANDWRITTEN = "MNIST test digits as pictures"


def font_file(name: str) -> Path:
    import matplotlib

    return Path(matplotlib.get_data_path()) / "fonts" / "ttf" / name


def printed_digit(digit: int, typeface: str) -> Any:
    """A 160x200 white picture with ``digit`` printed in black, 140 px high."""
    from PIL import Image, ImageDraw, ImageFont

    font = ImageFont.truetype(str(font_file(TYPEFACES[typeface])), 140)
    page = Image.new("L", (160, 200), 255)
    ImageDraw.Draw(page).text((80, 100), str(digit), fill=0, font=font, anchor="mm")
    return page


def handwritten_digit(image: Any) -> Any:
    """An MNIST digit as a user might hand it in: 4x larger, dark ink on a white page."""
    from PIL import Image

    ink = Image.fromarray(255 - image).resize((112, 112), Image.Resampling.BICUBIC)
    page = Image.new("L", (200, 150), 255)
    page.paste(ink, (50, 20))
    return page


def write_pictures(out: Path, handwritten: int) -> dict[str, list[tuple[Path, int]]]:
    """The pictures by group (typeface, or handwriting): (file, true digit) each."""
    out.mkdir(parents=True, exist_ok=True)
    groups: dict[str, list[tuple[Path, int]]] = {}
    for typeface in TYPEFACES:
        stem = typeface.lower().replace(" ", "_")
        groups[typeface] = []
        for digit in range(10):
            path = out / f"{stem}_{digit}.png"
            printed_digit(digit, typeface).save(path)
            groups[typeface].append((path, digit))
    if handwritten:
        _, _, images, labels = mnist()
        groups[HANDWRITTEN] = []
        for i in range(handwritten):
            path = out / f"mnist_test_{i}.png"
            handwritten_digit(images[i]).save(path)
            groups[HANDWRITTEN].append((path, int(labels[i])))
    return groups


def readings(model: predict.Model, pictures: list[tuple[Path, int]]) -> list[int]:
    """The digit ``model`` reads in each picture, as ``predict.py`` would."""
    return [
        predict.classify(model, to_mnist(load_grayscale(path), name=path))[0][0]
        for path, _ in pictures
    ]


def summary(read: list[int], pictures: list[tuple[Path, int]]) -> str:
    wrong = [(true, got) for (_, true), got in zip(pictures, read, strict=True) if got != true]
    text = f"{len(pictures) - len(wrong)}/{len(pictures)}"
    if wrong and len(wrong) <= 4:
        text += " (" + ", ".join(f"{true} as {got}" for true, got in wrong) + ")"
    return text


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python experiments/printed_digits.py", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("checkpoints", nargs="+", help="models to compare (as for predict.py)")
    parser.add_argument("--out", type=Path, default=runs.REPOSITORY / "runs" / "printed_digits")
    parser.add_argument("--handwritten", type=int, default=100, metavar="N")
    args = parser.parse_args(argv)
    try:
        models = [predict.load_model(path) for path in args.checkpoints]
    except predict.CheckpointLoadError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    groups = write_pictures(args.out, args.handwritten)
    names = [m.net.DESCRIPTION.split(" (")[0] for m in models]
    for model in models:
        print(f"{runs.display(model.checkpoint)}: {model.description}")
    rows = [["pictures", *names]]
    for group, pictures in groups.items():
        rows.append([group, *(summary(readings(m, pictures), pictures) for m in models)])
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        print("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())
    print(f"pictures in {runs.display(args.out)}/")
    return 0


if __name__ == "__main__":
    sys.exit(main())
