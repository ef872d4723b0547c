"""The rendered email templates open in a real browser (headless Chromium, Debian's `chromium`):
`python -m tools.render_emails OUTDIR` writes every template with sample data; each HTML file
must produce a non-blank screenshot and a DOM holding its German text with umlauts intact.

Skipped only on a developer machine without Chromium; under CI (CI=true) a missing browser
fails the test, so the check cannot silently disappear."""

from __future__ import annotations

import html
import os
import struct
import subprocess
import sys
import zlib
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from communication_fakes import LEGAL
from support import chromium
from therapy_platform.communication.rendering.renderer import EmailRenderer
from tools.render_emails import SAMPLE_LEGAL, render_all

ROOT = Path(__file__).resolve().parents[2]
WIDTH, HEIGHT = 800, 1000
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
)


def _run_chromium(browser: str, profile: Path, *arguments: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [browser, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *arguments],
        capture_output=True,
        timeout=90,
        check=True,
    )


def _png_rows(path: Path, max_rows: int) -> tuple[int, list[bytes]]:
    """Decode the first rows of an 8-bit RGB(A) PNG (what Chromium writes) into pixel rows."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", f"{path.name} is not a PNG"
    position, compressed = 8, b""
    width = height = colour_type = depth = 0
    while position < len(data):
        length, kind = struct.unpack(">I4s", data[position : position + 8])
        body = data[position + 8 : position + 8 + length]
        position += 12 + length
        if kind == b"IHDR":
            width, height, depth, colour_type = struct.unpack(">IIBB", body[:10])
        elif kind == b"IDAT":
            compressed += body
    assert depth == 8 and colour_type in (2, 6), f"unexpected PNG format in {path.name}"
    bpp = 3 if colour_type == 2 else 4
    stride = width * bpp
    rows_wanted = min(height, max_rows)
    raw = zlib.decompressobj().decompress(compressed, (stride + 1) * rows_wanted)
    previous, rows = bytearray(stride), []
    for row in range(rows_wanted):
        kind, line = (
            raw[row * (stride + 1)],
            bytearray(raw[row * (stride + 1) + 1 : (row + 1) * (stride + 1)]),
        )
        for i in range(stride):
            left = line[i - bpp] if i >= bpp else 0
            up, up_left = previous[i], (previous[i - bpp] if i >= bpp else 0)
            if kind == 1:
                line[i] = (line[i] + left) & 255
            elif kind == 2:
                line[i] = (line[i] + up) & 255
            elif kind == 3:
                line[i] = (line[i] + (left + up) // 2) & 255
            elif kind == 4:
                estimate = left + up - up_left
                distances = (abs(estimate - left), abs(estimate - up), abs(estimate - up_left))
                predictor = (
                    left
                    if distances[0] <= min(distances[1:])
                    else up
                    if distances[1] <= distances[2]
                    else up_left
                )
                line[i] = (line[i] + predictor) & 255
        rows.append(bytes(line))
        previous = line
    return bpp, rows


def _ink(path: Path) -> tuple[float, int]:
    """Share of pixels that differ from the most common colour, and how many colours there are."""
    bpp, rows = _png_rows(path, max_rows=600)
    pixels = Counter(row[i : i + 3] for row in rows for i in range(0, len(row), bpp))
    total = sum(pixels.values())
    return 1 - pixels.most_common(1)[0][1] / total, len(pixels)


@pytest.fixture(scope="module")
def rendered_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    outdir = tmp_path_factory.mktemp("emails")
    # The command exactly as operators run it.
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(ROOT / "layers" / "shared"), str(ROOT / "infra")]),
    }
    result = subprocess.run(
        [sys.executable, "-m", "tools.render_emails", str(outdir)],
        cwd=ROOT / "infra",
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    assert "wrote" in result.stdout
    return outdir


def test_render_command_writes_html_and_text_for_every_sample(rendered_dir: Path) -> None:
    names = set(render_all(EmailRenderer(LEGAL)))
    assert {path.stem for path in rendered_dir.glob("*.html")} == names | {"index"}
    assert {path.stem for path in rendered_dir.glob("*.txt")} == names
    for name in names:
        text = (rendered_dir / f"{name}.txt").read_text(encoding="utf-8")
        assert "Müllerstraße 12" in text and "Ã" not in text


def test_every_rendered_email_displays_in_chromium(rendered_dir: Path, tmp_path: Path) -> None:
    browser = chromium()
    expected = render_all(EmailRenderer(SAMPLE_LEGAL))

    def check(name: str) -> str | None:
        page = (rendered_dir / f"{name}.html").resolve().as_uri()
        shot = tmp_path / f"{name}.png"
        _run_chromium(
            browser,
            tmp_path / f"profile-shot-{name}",
            f"--window-size={WIDTH},{HEIGHT}",
            f"--screenshot={shot}",
            page,
        )
        dom = _run_chromium(browser, tmp_path / f"profile-dom-{name}", "--dump-dom", page).stdout.decode(
            "utf-8"
        )
        problems = []
        ink, colours = _ink(shot)
        if ink < 0.02 or colours < 20:
            problems.append(f"screenshot looks blank (ink {ink:.3f}, {colours} colours)")
        # The DOM serialises text with < > & escaped, as any record's text must be.
        first_line = html.escape(expected[name].text.splitlines()[0].rstrip(","), quote=False)
        for needle in ("Müllerstraße 12", "Therapieplatz-Vermittlung Beispiel e. V.", first_line):
            if needle not in dom:
                problems.append(f"DOM lacks {needle!r}")
        if "Ã" in dom or "&amp;auml;" in dom:
            problems.append("umlauts garbled in the DOM")
        if "<script" in dom or "<img" in dom:
            problems.append("markup from a record became an element")
        return f"{name}: {'; '.join(problems)}" if problems else None

    with ThreadPoolExecutor(max_workers=2) as pool:
        failures = [problem for problem in pool.map(check, sorted(expected)) if problem]
    assert not failures, "\n".join(failures)


def test_the_injected_name_shows_as_text_in_the_browser(rendered_dir: Path, tmp_path: Path) -> None:
    browser = chromium()
    page = (rendered_dir / "bundle_inquiry-injected.html").resolve().as_uri()
    dom = _run_chromium(browser, tmp_path / "profile", "--dump-dom", page).stdout.decode("utf-8")
    assert "Lang &lt;script&gt;" in dom
    assert "onerror=alert(1)&gt;" in dom
