"""kdamon's version and declared requirements, from pyproject.toml and from installed metadata."""

from __future__ import annotations

import importlib.metadata as md
import subprocess
import sys
import tomllib
from collections.abc import Iterator
from pathlib import Path

import pytest

import kdamon
from kdamon import distribution
from kdamon.errors import MissingExtraError

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]

FAKE_METADATA = """\
Metadata-Version: 2.4
Name: kdamon
Version: 9.8.7
Requires-Dist: attrs>=23.1
Requires-Dist: tomli>=1; python_version < "3.11"
Provides-Extra: check
Requires-Dist: pytest>=8; extra == "check"
Provides-Extra: events
Requires-Dist: pyroute2>=0.9.1; extra == "events"
Provides-Extra: test
Requires-Dist: kdamon[check,events]; extra == "test"
Requires-Dist: hypothesis>=6.100; extra == "test"
Provides-Extra: broken
Requires-Dist: kdamon-no-such-package>=1; extra == "broken"
"""


@pytest.fixture(autouse=True)
def _fresh_caches() -> Iterator[None]:
    distribution._pyproject.cache_clear()
    distribution._declared.cache_clear()
    yield
    distribution._pyproject.cache_clear()
    distribution._declared.cache_clear()


@pytest.fixture
def installed_only(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """kdamon as a wheel install sees itself: no checkout, FAKE_METADATA as its metadata."""
    info = tmp_path / "kdamon-9.8.7.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(FAKE_METADATA)
    fake = md.PathDistribution(info)
    real_distribution, real_version = md.distribution, md.version
    monkeypatch.setattr(distribution, "source_checkout", lambda: None)
    monkeypatch.setattr(md, "distribution", lambda name: fake if name == "kdamon" else real_distribution(name))
    monkeypatch.setattr(md, "version", lambda name: fake.version if name == "kdamon" else real_version(name))


def test_the_checkout_is_found_and_its_version_is_the_one_in_pyproject() -> None:
    assert distribution.source_checkout() == ROOT
    assert kdamon.__version__ == PYPROJECT["version"]


def test_version_comes_from_the_metadata_of_an_install(installed_only: None) -> None:
    assert distribution.version() == "9.8.7"


def test_an_uninstalled_checkout_reads_its_version_from_pyproject(monkeypatch: pytest.MonkeyPatch) -> None:
    def not_installed(name: str) -> str:
        raise md.PackageNotFoundError(name)

    monkeypatch.setattr(md, "version", not_installed)
    assert distribution.version() == PYPROJECT["version"]
    monkeypatch.setattr(distribution, "source_checkout", lambda: None)
    distribution._pyproject.cache_clear()
    assert distribution.version() == distribution.UNKNOWN_VERSION


def test_the_cli_prints_the_version() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "kdamon", "--version"], capture_output=True, text=True, check=True, cwd=ROOT
    )
    assert out.stdout == f"kdamon {PYPROJECT['version']}\n"


def test_requirements_of_the_checkout_are_pyprojects() -> None:
    assert [str(r) for r in distribution.requirements()] == PYPROJECT["dependencies"]
    assert [str(r) for r in distribution.requirements("check")] == PYPROJECT["optional-dependencies"]["check"]


def test_an_extra_naming_other_extras_brings_theirs_from_metadata(installed_only: None) -> None:
    assert [str(r) for r in distribution.requirements()] == ["attrs>=23.1"]  # tomli's marker fails on 3.11+
    assert [str(r) for r in distribution.requirements("test")] == [
        'pytest>=8; extra == "check"',
        'pyroute2>=0.9.1; extra == "events"',
        'hypothesis>=6.100; extra == "test"',
    ]
    assert distribution.declared_names() == ["attrs", "pytest", "pyroute2", "hypothesis", "kdamon-no-such-package"]
    with pytest.raises(ValueError, match="no extra 'plot'"):
        distribution.requirements("plot")
    assert distribution.missing("broken") == ["kdamon-no-such-package>=1 (not installed)"]  # no marker


def test_an_extra_naming_other_extras_brings_theirs_from_pyproject() -> None:
    names = {r.name for r in distribution.requirements("test")}
    assert {"pytest", "pyroute2", "pyudev", "matplotlib", "python-on-whales"} <= names  # test = ["kdamon[...]", ...]
    assert "kdamon" not in names and "kdamon" not in distribution.declared_names()


def test_a_missing_or_too_old_requirement_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(
        distribution,
        "_declared",
        lambda: ([], {"check": ["pytest>=8", "kdamon-no-such-package>=1", f"attrs>{md.version('attrs')}"]}),
    )
    assert distribution.missing("check") == [
        "kdamon-no-such-package>=1 (not installed)",
        f"attrs>{md.version('attrs')} (found {md.version('attrs')})",
    ]
    with pytest.raises(MissingExtraError) as info:
        distribution.require_extra("check", "kdamon check")
    message = str(info.value)
    assert message.startswith("kdamon check needs kdamon-no-such-package>=1 (not installed)")
    assert message.endswith("pip install 'kdamon[check]'")


def test_the_check_extra_is_installed_here() -> None:
    assert distribution.missing("check") == []
    distribution.require_extra("check", "kdamon check")  # raises nothing


def test_the_lowest_versions_pin_every_floor_of_the_named_extras() -> None:
    out = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "lowest_requirements.py"), "check", "events"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.splitlines()
    floors = {}
    for text in [
        *PYPROJECT["dependencies"],
        *PYPROJECT["optional-dependencies"]["check"],
        *PYPROJECT["optional-dependencies"]["events"],
    ]:
        name, sep, floor = text.partition(">=")
        floors[name] = floor if sep else None
    assert out == [f"{name}=={floor}" if floor else name for name, floor in floors.items()]
    assert "matplotlib" not in " ".join(out)  # the plot extra was not asked for
    with_test = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "lowest_requirements.py"), "test"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.splitlines()
    assert set(out) < set(with_test) and "types-PyYAML" in with_test  # no floor: as written
