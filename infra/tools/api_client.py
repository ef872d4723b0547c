"""Generates the typed Python client of the API from the committed OpenAPI document
(functions/api_docs/openapi.json) with openapi-python-client, pinned in
infra/tools/api-client-requirements.txt.

The generator lives in its own virtualenv (.venv-tools/openapi-python-client, ignored by git,
made on first use and remade when the pin changes): its dependencies (pydantic, rich, typer)
need other versions than the project pins, so it must not share .venv. The generated package
`therapy_api_client` needs only httpx and attrs at run time, which .venv has.

    python -m tools.api_client                       build/api-client/therapy_api_client
    python -m tools.api_client --output DIR          DIR/therapy_api_client

Then `PYTHONPATH=build/api-client python -c "import therapy_api_client"`; docs/api.md shows a call.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import venv
from pathlib import Path
from typing import Final

ROOT: Final = Path(__file__).resolve().parents[2]
SPEC: Final = ROOT / "functions" / "api_docs" / "openapi.json"
REQUIREMENTS: Final = Path(__file__).with_name("api-client-requirements.txt")
TOOLS_VENV: Final = ROOT / ".venv-tools" / "openapi-python-client"
DEFAULT_OUTPUT: Final = ROOT / "build" / "api-client"
PACKAGE: Final = "therapy_api_client"


def generator_venv(location: Path = TOOLS_VENV) -> Path:
    """The generator's virtualenv, installed from the pinned requirements; its bin directory."""
    bin_dir = location / "bin"
    stamp = location / ".requirements"
    wanted = REQUIREMENTS.read_text(encoding="utf-8")
    if (
        stamp.is_file()
        and stamp.read_text(encoding="utf-8") == wanted
        and (bin_dir / "openapi-python-client").exists()
    ):
        return bin_dir
    if location.exists():
        shutil.rmtree(location)
    venv.EnvBuilder(with_pip=True, clear=True).create(location)
    subprocess.run(  # noqa: S603 - fixed argv
        [str(bin_dir / "python"), "-m", "pip", "install", "--quiet", "-r", str(REQUIREMENTS)],
        check=True,
    )
    stamp.write_text(wanted, encoding="utf-8")
    return bin_dir


def generate(output: Path = DEFAULT_OUTPUT, *, spec: Path = SPEC) -> Path:
    """Generate the client into output/therapy_api_client (replacing it); the package's path."""
    bin_dir = generator_venv()
    package = output / PACKAGE
    if package.exists():
        shutil.rmtree(package)
    output.mkdir(parents=True, exist_ok=True)
    # The generator formats its output with ruff, from its own virtualenv.
    environment = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}"}
    done = subprocess.run(  # noqa: S603 - fixed argv
        [
            str(bin_dir / "openapi-python-client"),
            "generate",
            "--path",
            str(spec),
            "--output-path",
            str(package),
            "--meta",
            "none",
        ],
        env=environment,
        capture_output=True,
        text=True,
        check=False,
    )
    # A warning means a part of the document the generator skipped: a client missing operations.
    if done.returncode != 0 or "Warning" in done.stdout or "Warning" in done.stderr:
        raise RuntimeError(f"openapi-python-client failed:\n{done.stdout}\n{done.stderr}")
    return package


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT, help="directory for the package")
    args = parser.parse_args(argv)
    package = generate(args.output)
    print(f"wrote {package}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
