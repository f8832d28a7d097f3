"""Fixtures of the container group: the engine, the image built once, the figures.

Every test module here is marked `container` (pytestmark). The image is built once per session
(cold: the stand-in base image and every layer; warm: the layer cache in the
fixed folder) and the measured figures (prepare, build, size, start to healthy,
the stop/resume check, the group's time) are printed at the end of the run.
"""

from __future__ import annotations

import re
import time
import tomllib
import uuid
from collections.abc import Iterator

import pytest

from tests.container.engine import ROOT, Engine, find_engine
from tests.container.readme import Names, argv_for, lab_command

FIGURES: dict[str, str] = {}
_GROUP_SECONDS = [0.0]
VERSION = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
# Ports of this group (loopback only): 18701 docker run, 18702 compose, 18750 the
# cluster profile's server and 18751 the single-machine service it brings along.
RUN_PORT = 18701
COMPOSE_PORT = 18702
CLUSTER_PORT = 18750
CLUSTER_SINGLE_PORT = 18751


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    """The group's own time (setup, call, teardown of its tests, the build included)."""
    if report.nodeid.startswith("tests/container/"):
        _GROUP_SECONDS[0] += report.duration


def pytest_sessionfinish(session: pytest.Session) -> None:
    """The group's time among the figures; on a pytest-xdist worker, the figures handed
    to the controller, which prints them (tests/conftest.py): a worker's own summary
    is not shown."""
    if FIGURES:
        FIGURES["container group"] = f"{_GROUP_SECONDS[0]:.0f} s"
    workeroutput = getattr(session.config, "workeroutput", None)
    if workeroutput is not None and FIGURES:
        workeroutput["container_figures"] = dict(FIGURES)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if FIGURES:  # after pytest_sessionfinish: the group's time is in
        terminalreporter.section("container figures")
        for key, value in FIGURES.items():
            terminalreporter.write_line(f"{key}: {value}")


@pytest.fixture(scope="session")
def engine() -> Engine:
    found = find_engine()
    if found.unavailable:
        pytest.skip(f"no container engine can run here: {found.unavailable}")
    FIGURES["engine"] = found.name
    if found.prepared_seconds:
        FIGURES["prepare podman + base image"] = f"{found.prepared_seconds:.0f} s"
    return found


@pytest.fixture(scope="session")
def tag() -> str:
    """A tag of the test's own, so no test touches a real deployment's images."""
    return f"localhost/annlab-test:{VERSION}"


@pytest.fixture(scope="session")
def image(engine: Engine, tag: str) -> str:
    """The README's build command, run (one build per session)."""
    names = Names(container="", volume="", image=tag, image_versioned=tag, port=0)
    argv = argv_for(lab_command("docker build -t"), engine.name, names, engine.compose)
    argv[2:2] = [flag for flag in engine.build_flags if flag not in argv]
    started = time.monotonic()
    result = engine.run(argv, timeout=1800)
    FIGURES["build"] = f"{time.monotonic() - started:.0f} s"
    if engine.name == "podman":
        cached = len(re.findall(r"Using cache", result.stdout + result.stderr))
        FIGURES["build"] += f" ({cached} cached steps)"
    size = engine.run([engine.name, "image", "inspect", "--format", "{{.Size}}", tag])
    FIGURES["image size"] = f"{int(size.stdout.strip()) / 1e6:.0f} MB"
    return tag


@pytest.fixture
def names(tag: str) -> Iterator[Names]:
    suffix = uuid.uuid4().hex[:8]
    yield Names(
        container=f"annlab-test-{suffix}",
        volume=f"annlab-test-data-{suffix}",
        image=tag,
        image_versioned=tag,
        port=RUN_PORT,
        project=f"annlabtest{suffix}",
    )
