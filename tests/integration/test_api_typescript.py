"""TypeScript types from the OpenAPI document: openapi-typescript (pinned with TypeScript in
infra/tools/typescript/package.json and its lock file; node_modules under the ignored
.venv-tools/typescript) generates them, and `tsc --noEmit --strict` checks a small usage file a
frontend would write: a patient draft, the 201 answer of createPatient, the 410 of getPatient,
and a wrong symptom code the compiler must refuse."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from support import unavailable

ROOT = Path(__file__).resolve().parents[2]
PINS = ROOT / "infra" / "tools" / "typescript"
TOOLS = ROOT / ".venv-tools" / "typescript"
SPEC = ROOT / "functions" / "api_docs" / "openapi.json"
USAGE = """import type { components, operations, paths } from "./api";

type PatientDraft = components["schemas"]["PatientDraft"];
type Registered = operations["createPatient"]["responses"][201]["content"]["application/json"];
type Erased = operations["getPatient"]["responses"][410];

export const draft: PatientDraft = {
  first_name: "Erika",
  last_name: "Mustermann",
  postcode: "50667",
  symptoms: ["depression", "sleep"],
};
export function statusOf(patient: Registered): Registered["status"] {
  return patient.status;
}
export type { Erased };
export const path: keyof paths = "/api/v2/patients/{patient_id}";
// @ts-expect-error: not a symptom code of the catalogue
export const wrong: PatientDraft = { ...draft, symptoms: ["sadness"] };
"""


def _npm() -> str:
    found = shutil.which("npm")
    if found and shutil.which("node"):
        return found
    unavailable("node and npm are needed for the TypeScript check of the OpenAPI document")


def _installed() -> Path:
    """node_modules with the pinned packages (npm ci from the lock file, again when it changes)."""
    lock = (PINS / "package-lock.json").read_text()
    stamp = TOOLS / ".lock"
    if not (
        stamp.is_file() and stamp.read_text() == lock and (TOOLS / "node_modules" / ".bin" / "tsc").exists()
    ):
        TOOLS.mkdir(parents=True, exist_ok=True)
        for name in ("package.json", "package-lock.json"):
            shutil.copyfile(PINS / name, TOOLS / name)
        subprocess.run(
            [_npm(), "ci", "--no-audit", "--no-fund"], cwd=TOOLS, check=True, capture_output=True, timeout=600
        )
        stamp.write_text(lock)
    return TOOLS / "node_modules" / ".bin"


def _generate(bin_dir: Path, target: Path) -> None:
    # A field with a default stays optional (openapi-typescript would make it required).
    generated = subprocess.run(
        [
            str(bin_dir / "openapi-typescript"),
            str(SPEC),
            "--default-non-nullable",
            "false",
            "-o",
            str(target),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert generated.returncode == 0, generated.stdout + generated.stderr


def test_the_document_gives_typescript_types_a_frontend_can_compile(tmp_path: Path) -> None:
    _npm()
    bin_dir = _installed()
    _generate(bin_dir, tmp_path / "api.d.ts")
    (tmp_path / "usage.ts").write_text(USAGE)
    checked = subprocess.run(
        [
            str(bin_dir / "tsc"),
            "--noEmit",
            "--strict",
            "--target",
            "es2022",
            "--module",
            "es2022",
            "--moduleResolution",
            "bundler",
            str(tmp_path / "usage.ts"),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_the_type_check_has_teeth(tmp_path: Path) -> None:
    """A draft without its required fields does not compile."""
    _npm()
    bin_dir = _installed()
    _generate(bin_dir, tmp_path / "api.d.ts")
    (tmp_path / "usage.ts").write_text(
        'import type { components } from "./api";\n'
        'export const draft: components["schemas"]["PatientDraft"] = { first_name: "Erika" };\n'
    )
    checked = subprocess.run(
        [
            str(bin_dir / "tsc"),
            "--noEmit",
            "--strict",
            "--moduleResolution",
            "bundler",
            "--module",
            "es2022",
            str(tmp_path / "usage.ts"),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert checked.returncode != 0 and "last_name" in checked.stdout, checked.stdout
