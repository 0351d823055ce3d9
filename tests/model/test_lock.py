"""importcache.lock: its text read and written, versions sharing a section, corrupt files."""

from __future__ import annotations

from pathlib import Path

import pytest

from pytest_importcache.model.errors import LockError
from pytest_importcache.model.lock import (
    Lock,
    LockSection,
    changes_text,
    load_lock,
    lock_changes,
    python_key,
    save_lock,
    section_key,
)

LOCKED = """\
# a comment
[mylib]
python = 3.11-linux 3.12-linux
suggested = warm="25ms"
  json
  mylib

[$ mycli --help]
python = 3.11-linux
  mycli
"""


def test_a_lock_reads_back_as_it_was_written() -> None:
    lock = Lock.parse(LOCKED)
    assert lock.modules_for("mylib", "3.12-linux") == ("json", "mylib")
    assert lock.modules_for("$ mycli --help", "3.11-linux") == ("mycli",)
    assert lock.modules_for("mylib", "3.13-linux") is None
    assert Lock.parse(lock.format()) == lock


def test_the_text_is_one_module_a_line_sorted_for_diffs() -> None:
    lock = Lock().with_modules("mylib", "3.11-linux", ["mylib.core", "json", "mylib"], 'warm="9ms"')
    assert lock.format().splitlines()[-6:] == [
        "[mylib]",
        "python = 3.11-linux",
        'suggested = warm="9ms"',
        "  json",
        "  mylib",
        "  mylib.core",
    ]


def test_versions_loading_the_same_modules_share_a_section() -> None:
    lock = Lock().with_modules("mylib", "3.12-linux", ["mylib", "json"])
    lock = lock.with_modules("mylib", "3.11-linux", ["json", "mylib"])
    assert lock.sections == (LockSection("mylib", ("3.11-linux", "3.12-linux"), ("json", "mylib")),)


def test_a_version_loading_other_modules_gets_its_own_section() -> None:
    lock = Lock().with_modules("mylib", "3.11-linux", ["mylib", "tomli"])
    lock = lock.with_modules("mylib", "3.12-linux", ["mylib"])
    assert [section.pythons for section in lock.sections] == [("3.11-linux",), ("3.12-linux",)]
    # 3.11 then loads what 3.12 loads: it joins that section and its own goes.
    lock = lock.with_modules("mylib", "3.11-linux", ["mylib"])
    assert lock.sections == (LockSection("mylib", ("3.11-linux", "3.12-linux"), ("mylib",)),)


def test_keeping_drops_the_budgets_no_longer_configured() -> None:
    lock = Lock.parse(LOCKED).keeping(["mylib"])
    assert [section.key for section in lock.sections] == ["mylib"]


def test_changes_are_new_and_gone_modules() -> None:
    assert lock_changes(["json", "mylib"], ["mylib", "decimal"]) == (["decimal"], ["json"])
    text = changes_text("mylib", "3.11-linux", [("decimal", ["mylib", "decimal"])], ["json"])
    assert text.splitlines()[:3] == [
        "mylib loads other modules than importcache.lock says (Python 3.11-linux):",
        "    new: decimal: mylib -> decimal",
        "    gone: json",
    ]


def test_python_key_is_major_minor_free_threading_and_platform() -> None:
    assert python_key("3.12.1", "linux") == "3.12-linux"
    assert python_key("3.13.0", "darwin", free_threaded=True) == "3.13t-darwin"
    assert python_key("3.11.7", "win32") == "3.11-win32"
    # Each is a build the lock reads back, ordered by version.
    lock = Lock.parse("[m]\npython = 3.13t-linux 3.10-linux 3.11-win32\n  m\n")
    assert lock.sections[0].pythons == ("3.13t-linux", "3.10-linux", "3.11-win32")
    assert Lock.parse(lock.with_modules("m", "3.12-linux", ["m"]).format()).sections[0].pythons == (
        "3.10-linux",
        "3.11-win32",
        "3.12-linux",
        "3.13t-linux",
    )


def test_a_bare_version_is_no_build() -> None:
    with pytest.raises(LockError, match=r"expected Python builds such as 3\.11-linux"):
        Lock.parse("[m]\npython = 3.11\n  m\n")


def test_a_lazy_all_measurement_has_sections_apart() -> None:
    assert section_key("mylib", "all") == "mylib lazy_imports=all"
    assert section_key("mylib", "normal") == section_key("mylib") == "mylib"
    assert section_key("mylib lazy_imports=all", "all") == "mylib lazy_imports=all"
    lock = Lock().with_modules("mylib", "3.15-linux", ["mylib", "json"])
    lock = lock.with_modules("mylib lazy_imports=all", "3.15-linux", ["mylib"])
    assert lock.modules_for("mylib", "3.15-linux") == ("json", "mylib")
    assert lock.modules_for("mylib lazy_imports=all", "3.15-linux") == ("mylib",)
    # Kept while the budget is configured, dropped with it.
    assert len(lock.keeping(["mylib"]).sections) == 2
    assert not lock.keeping(["other"]).sections


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("  json\n", "importcache.lock:1: 'json' comes before any [section]"),
        ("[mylib\n", "importcache.lock:1: '[mylib' is not a section header [NAME]"),
        ("[mylib]\n  json\n", "importcache.lock:1: section [mylib] has no python = line"),
        ("[m]\npython = three\n", "importcache.lock:2: python = 'three': expected Python builds"),
        ("[m]\npython = 3.11-linux\ncolour = red\n", "importcache.lock:3: unknown key 'colour'"),
        (
            "[m]\npython = 3.11-linux\n  not a module\n",
            "importcache.lock:3: 'not a module' is not a",
        ),
        (
            "[m]\npython = 3.11-linux\n  m\n[m]\npython = 3.11-linux\n  n\n",
            "importcache.lock:4: [m] is locked twice for Python 3.11-linux",
        ),
    ],
)
def test_a_corrupt_lock_is_one_line_naming_the_file_and_the_line(text: str, message: str) -> None:
    with pytest.raises(LockError) as raised:
        Lock.parse(text)
    assert str(raised.value).startswith(message)
    assert "\n" not in str(raised.value)


def test_the_file_is_written_atomically_and_read_back(tmp_path: Path) -> None:
    path = tmp_path / "importcache.lock"
    assert load_lock(path) is None
    lock = Lock().with_modules("mylib", "3.11-linux", ["mylib"])
    save_lock(path, lock)
    assert load_lock(path) == lock
    assert [entry.name for entry in tmp_path.iterdir()] == ["importcache.lock"]
    path.write_bytes(b"\xff\xfe")
    with pytest.raises(LockError, match=r"importcache.lock: cannot read: not UTF-8"):
        load_lock(path)


def test_saving_keeps_the_mode_of_the_old_file_and_gives_a_new_one_the_umask(
    tmp_path: Path,
) -> None:
    import os  # noqa: PLC0415
    import stat  # noqa: PLC0415

    lock = Lock().with_modules("mylib", "3.11-linux", ["mylib"])
    path = tmp_path / "importcache.lock"
    umask = os.umask(0o027)
    try:
        save_lock(path, lock)
    finally:
        os.umask(umask)
    assert stat.S_IMODE(path.stat().st_mode) == 0o640  # 0o666 less the umask, not 0o600
    path.chmod(0o664)
    save_lock(path, lock.with_modules("mylib", "3.12-linux", ["mylib"]))
    assert stat.S_IMODE(path.stat().st_mode) == 0o664
    assert "3.12-linux" in path.read_text()
    assert [each.name for each in tmp_path.iterdir()] == ["importcache.lock"]


def test_an_update_that_changes_no_module_changes_no_line() -> None:
    first = Lock().with_modules("mylib", "3.11-linux", ["mylib", "json"], 'warm="9.7ms"')
    again = first.with_modules("mylib", "3.11-linux", ["json", "mylib"], 'warm="8.3ms"')
    assert again.format() == first.format()
    grown = again.with_modules("mylib", "3.11-linux", ["json", "mylib", "decimal"], 'warm="12ms"')
    assert 'suggested = warm="12ms"' in grown.format()
