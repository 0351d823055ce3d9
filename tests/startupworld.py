"""A real console script for start-up tests: a tiny distribution installed by pip into a venv.

The wheel is written by hand (no build backend needed: 3.12+ venvs have no
setuptools) and installed offline with ``pip --python VENV install --no-index``,
so pip writes the console script's wrapper as it does for any install.
"""

from __future__ import annotations

import base64
import hashlib
import subprocess
import sys
import zipfile
from pathlib import Path

from conftest import heavy_source

SCRIPT = "clipkg-run"

CLI_SOURCE = """\
import sys


def main():
    from . import lazy  # imported while the command runs

    lazy.use()
    mode = sys.argv[1] if len(sys.argv) > 1 else ""
    if mode == "--help":
        print("usage: clipkg-run [--help]")
        return 0
    if mode == "argv0":
        with open(sys.argv[2], "w") as file:
            file.write(sys.argv[0])
        return 0
    if mode == "fail":
        print("first line\\nsecond line\\nit broke badly", file=sys.stderr)
        return 4
    if mode == "ask":
        return 0 if input("name? ") else 1
    if mode == "hang":
        import time
        time.sleep(600)
    if mode == "daemon":
        import subprocess
        sleeper = subprocess.Popen(
            [sys.executable, "-c", "import time; time.sleep(600)"], start_new_session=True
        )
        with open(sys.argv[2], "w") as file:
            file.write(str(sleeper.pid))
        return 0
    if mode == "flood":
        line = "x" * 99 + "\\n"
        for _ in range(60_000):  # about 6 MB on each stream
            sys.stdout.write(line)
            sys.stderr.write(line)
        print("the last flood line", file=sys.stderr)
        return int(sys.argv[2])
    if mode == "heavy":
        from . import heavy  # noqa: F401
    return 0
"""

FILES = {
    "clipkg/__init__.py": "VERSION = '1.0'\n",
    "clipkg/cli.py": CLI_SOURCE,
    "clipkg/lazy.py": "import decimal\n\n\ndef use():\n    return decimal.Decimal(1)\n",
    "clipkg/heavy.py": heavy_source(400),
    "clipkg/__main__.py": "from clipkg.cli import main\n\nraise SystemExit(main())\n",
}


def _record_hash(data: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"sha256={digest}"


def build_wheel(directory: Path) -> Path:
    """``clipkg-1.0-py3-none-any.whl`` with the console script ``clipkg-run``."""
    info = "clipkg-1.0.dist-info"
    files = {
        **FILES,
        f"{info}/METADATA": "Metadata-Version: 2.1\nName: clipkg\nVersion: 1.0\n",
        f"{info}/WHEEL": (
            "Wheel-Version: 1.0\nGenerator: handmade\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
        ),
        f"{info}/entry_points.txt": f"[console_scripts]\n{SCRIPT} = clipkg.cli:main\n",
        f"{info}/top_level.txt": "clipkg\n",
    }
    record = [
        f"{name},{_record_hash(text.encode())},{len(text.encode())}" for name, text in files.items()
    ]
    record.append(f"{info}/RECORD,,")
    wheel = directory / "clipkg-1.0-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        for name, text in files.items():
            archive.writestr(name, text)
        archive.writestr(f"{info}/RECORD", "\n".join(record) + "\n")
    return wheel


def make_venv_with_script(directory: Path) -> Path:
    """A venv under ``directory`` with clipkg installed by pip; its python's path."""
    directory.mkdir(parents=True, exist_ok=True)
    venv = directory / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "--python",
            str(python),
            "install",
            "--quiet",
            "--no-index",
            "--no-deps",
            "--disable-pip-version-check",
            str(build_wheel(directory)),
        ],
        check=True,
        stdin=subprocess.DEVNULL,
    )
    assert (venv / "bin" / SCRIPT).exists()
    return python
