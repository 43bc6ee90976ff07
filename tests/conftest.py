"""Shared fixtures: fresh SQLite files and the real PostgreSQL, small trained models, a server.

Storage tests take the `settings` fixture, which runs each test twice: on a new SQLite file
under tmp_path and on a new schema of the real PostgreSQL at POSTGRES_TEST_URL
(default: 127.0.0.1:5432, database `test`). PostgreSQL being down fails those tests: they
are part of the suite, not optional.
"""

from __future__ import annotations

import dataclasses
import fcntl
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Generator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import create_engine, make_url, text

import feedback.db
from classifier.training.dataset import DEFAULT_TAXONOMY, DEFAULT_TRAIN, load_dataset, load_taxonomy
from classifier.training.train import train_version
from classifier.versions import registry
from feedback.db import dispose_engines, session_scope
from feedback.settings import SETTING_ENV_NAMES, Settings, load_settings
from tests.feedback_loop_support import per_label_sample, write_csv
from tests.tcp_proxy import TcpProxy

ROOT = Path(__file__).resolve().parent.parent
POSTGRES_URL = os.environ.get("POSTGRES_TEST_URL",
                              "postgresql+psycopg://postgres@127.0.0.1:5432/test")
ENV_SETTINGS = SETTING_ENV_NAMES
SMALL_ROWS_PER_CATEGORY = 120
SMALL_MODEL = "tfidf"
DB_FILE = "support_triage.db"  # in DATA_DIR (feedback.settings.Settings.effective_database_url)


@dataclasses.dataclass(frozen=True)
class SmallModel:
    new: registry.NewVersion
    gate: dict[str, object]


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Tests never see the developer's settings, and never share engines."""
    for name in ENV_SETTINGS:
        monkeypatch.delenv(name, raising=False)
    yield
    dispose_engines()


# The readiness gate's latency limit (GATE_MAX_P95_MS, 50 ms) for every model the tests
# train or serve: two workers, servers and Chromium share two cores, and one slow timing
# sample must not fail a test about something else. The limit itself is tested with its own
# values (test_lifecycle's strict gate, test_gate_*), which override this.
TEST_GATE_MAX_P95_MS = 1000.0


def make_settings(tmp_path: Path, database_url: str = "", **overrides: object) -> Settings:
    base = dataclasses.replace(load_settings(), data_dir=tmp_path, database_url=database_url,
                               gate_max_p95_ms=TEST_GATE_MAX_P95_MS)
    return dataclasses.replace(base, **overrides)


@pytest.fixture(scope="session")
def migrated_sqlite(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SQLite database the app has created and migrated, once per worker."""
    folder = tmp_path_factory.mktemp("migrated-sqlite")
    feedback.db.get_engine(make_settings(folder))
    dispose_engines()  # the last connection closes: the WAL is checkpointed into the file
    return folder / DB_FILE


@pytest.fixture
def sqlite_settings(request: pytest.FixtureRequest, tmp_path: Path) -> Settings:
    """A fresh SQLite file under tmp_path. For db-tier tests a copy of `migrated_sqlite`
    (running the migrations again for every test costs more than the test); for the others,
    and for modules that set EMPTY_DATABASE = True, an empty folder in which the app creates
    the database on first use."""
    data = tmp_path / "data"
    if (request.node.get_closest_marker("db") is not None
            and not getattr(request.module, "EMPTY_DATABASE", False)):
        data.mkdir()
        migrated = request.getfixturevalue("migrated_sqlite")
        for name in (DB_FILE, f"{DB_FILE}-wal"):
            if (migrated.parent / name).exists():
                shutil.copyfile(migrated.parent / name, data / name)
    return make_settings(data)


def _schema_url(schema: str) -> str:
    separator = "&" if "?" in POSTGRES_URL else "?"
    return f"{POSTGRES_URL}{separator}options=-csearch_path%3D{schema}"


@pytest.fixture(scope="session")
def migrated_postgres() -> tuple[str, str] | None:
    """(SQL script, schema name in it) of a schema the app has created and migrated, once
    per worker (pg_dump of it, data included): a test's fresh schema is then one script
    instead of every Alembic revision. None without pg_dump: each test migrates."""
    pg_dump = shutil.which("pg_dump")
    if pg_dump is None:
        return None
    schema = f"tmpl_{uuid.uuid4().hex[:12]}"
    admin = create_engine(POSTGRES_URL)
    with admin.begin() as conn:
        conn.execute(text(f"CREATE SCHEMA {schema}"))
    try:
        feedback.db.get_engine(make_settings(Path(tempfile.mkdtemp()), _schema_url(schema)))
        dispose_engines()
        url = make_url(POSTGRES_URL)
        dumped = subprocess.run(
            [pg_dump, "-h", url.host or "127.0.0.1", "-p", str(url.port or 5432),
             "-U", url.username or "postgres", "-d", url.database or "test", "-n", schema,
             "--inserts", "--no-owner", "--no-privileges"],
            capture_output=True, text=True, check=True, timeout=60,
            env={**os.environ, "PGPASSWORD": url.password or ""}).stdout
        # psql's own commands (\restrict ...) are not SQL
        dumped = "\n".join(line for line in dumped.splitlines() if not line.startswith("\\"))
    finally:
        with admin.begin() as conn:
            conn.execute(text(f"DROP SCHEMA {schema} CASCADE"))
        admin.dispose()
    return dumped, schema


@pytest.fixture
def postgres_settings(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Settings]:
    """A fresh schema on the real PostgreSQL, dropped afterwards. For db-tier tests a
    replay of `migrated_postgres` (like sqlite_settings' copy); for the others, and modules
    that set EMPTY_DATABASE = True, an empty schema the app migrates on first use."""
    schema = f"t_{uuid.uuid4().hex[:12]}"
    migrated = (request.getfixturevalue("migrated_postgres")
                if request.node.get_closest_marker("db") is not None
                and not getattr(request.module, "EMPTY_DATABASE", False) else None)
    admin = create_engine(POSTGRES_URL)
    with admin.begin() as conn:
        if migrated is None:
            conn.execute(text(f"CREATE SCHEMA {schema}"))
        else:
            script, template = migrated
            # the driver's own cursor: no parameters, so a % in the script stays a %
            cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
            cursor.execute(script.replace(template, schema))
    yield make_settings(tmp_path / "data", _schema_url(schema))
    dispose_engines()
    with admin.begin() as conn:
        conn.execute(text(f"DROP SCHEMA {schema} CASCADE"))
    admin.dispose()


@pytest.fixture(params=["sqlite", "postgres"])
def settings(request: pytest.FixtureRequest) -> Settings:
    """Runs the test on SQLite and on PostgreSQL."""
    return request.getfixturevalue(f"{request.param}_settings")


@pytest.fixture(scope="session")
def small_csv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A quick-to-train slice of Banking77 already mapped onto the five support categories."""
    data = load_taxonomy(DEFAULT_TAXONOMY).apply(load_dataset(DEFAULT_TRAIN))
    rows = per_label_sample(data.texts, data.labels, SMALL_ROWS_PER_CATEGORY, seed=7)
    return write_csv(tmp_path_factory.mktemp("data") / "small.csv", rows)


@pytest.fixture(scope="session")
def small_model(small_csv: Path, tmp_path_factory: pytest.TempPathFactory) -> SmallModel:
    """A small model trained once through the real path (training, gate, promotion); tests
    install copies of its registry rows instead of retraining for every test. TF-IDF: the
    tests that use it are about storage and serving, not the sentence encoder."""
    settings = make_settings(tmp_path_factory.mktemp("small-model"))
    result = train_version(data=load_dataset(small_csv), test=None, settings=settings,
                           params={"model": SMALL_MODEL}, promote=True)
    assert result.promoted, result.gate
    with session_scope(settings) as session:
        new = registry.export_version(session=session, version=result.version.version)
    dispose_engines()
    return SmallModel(new=new, gate=result.version.gate or {})


def install_model(settings: Settings, model: SmallModel, *, promote: bool) -> int:
    """Register a copy of `model` (gate result included) and optionally make it live."""
    with session_scope(settings) as session:
        version = registry.register_version(session=session, new=model.new, actor="test").version
        registry.record_gate(session=session, version=version, passed=model.gate["passed"],
                             checklist=model.gate, actor="test")
        if promote:
            registry.promote(session=session, version=version, actor="test")
    return version


@pytest.fixture
def live_settings(settings: Settings, small_model: SmallModel) -> Settings:
    """`settings` with the small model live (SQLite and PostgreSQL)."""
    install_model(settings, small_model, promote=True)
    return settings


@pytest.fixture
def live_sqlite_settings(sqlite_settings: Settings, small_model: SmallModel) -> Settings:
    install_model(sqlite_settings, small_model, promote=True)
    return sqlite_settings


@pytest.fixture(scope="session")
def trained_data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A data folder whose SQLite database holds a Banking77 model on the support taxonomy,
    trained once by the app's own first-start path; servers copy it instead of training
    again. TF-IDF, not the default: the tests using it are about serving, the UI, drift,
    privacy and the feedback loop, and the encoder would add about 100 s to them; the
    default model is served end to end by test_first_start and test_cli_trains_banking77.
    The off-topic detector's fit is saved in it too, as a first start of the app does."""
    from classifier.model.off_topic import cached_or_fitted
    from classifier.training.default_model import ensure_live_model

    def train(folder: Path) -> None:
        ensure_live_model(make_settings(folder), progress=lambda _m: None, model=SMALL_MODEL)
        dispose_engines()
        cached_or_fitted(folder)

    return built_once(tmp_path_factory, "trained", train)


def built_once(tmp_path_factory: pytest.TempPathFactory, name: str,
               build: Callable[[Path], None]) -> Path:
    """A folder built once per test run, shared by every worker of `pytest -n N` (the
    first builds it under a file lock, the others wait and reuse it). Tests copy it before
    changing anything in it."""
    root = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        root = root.parent  # the run's folder, above each worker's own
    folder = root / name
    with open(root / f"{name}.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (root / f"{name}.done").exists():
            shutil.rmtree(folder, ignore_errors=True)
            folder.mkdir()
            build(folder)
            (root / f"{name}.done").touch()
    return folder


def app_env(data_dir: Path, **extra: str) -> dict[str, str]:
    """The environment of an app or CLI process a test starts: none of the developer's
    settings, `data_dir` as DATA_DIR, the tests' gate latency limit, then `extra`."""
    env = {k: v for k, v in os.environ.items() if k not in ENV_SETTINGS}
    env.update({"DATA_DIR": str(data_dir), "GATE_MAX_P95_MS": str(TEST_GATE_MAX_P95_MS),
                **extra})
    return env


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclasses.dataclass
class Server:
    url: str
    data_dir: Path
    process: subprocess.Popen[bytes]
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


def launch_server(data_dir: Path, log_path: Path, extra_env: dict[str, str] | None = None,
                  command: list[str] | None = None) -> Server:
    """Run `python app.py` (or `command`, from the repository root) as a user would."""
    if _running.tier not in (None, "e2e"):
        pytest.fail(f"a {_running.tier} test starts a server: list its fixture in "
                    "E2E_FIXTURES or mark it e2e (tests/conftest.py)", pytrace=False)
    port = free_port()
    env = app_env(data_dir, **{"GRADIO_SERVER_PORT": str(port),
                                "GRADIO_ANALYTICS_ENABLED": "False", **(extra_env or {})})
    log_file = log_path.open("wb")
    process = subprocess.Popen(command or [sys.executable, "app.py"], cwd=ROOT, env=env,
                               stdout=log_file, stderr=subprocess.STDOUT)
    return Server(f"http://127.0.0.1:{port}", data_dir, process, log_path)


def wait_until(server: Server, path: str, timeout: float) -> None:
    """Wait until `path` answers 200; stops the server and raises if it never does."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(f"app.py exited early:\n{server.log()}")
        try:
            if httpx.get(f"{server.url}{path}", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    stop_server(server)
    raise RuntimeError(f"app.py did not answer {path} in {timeout}s:\n{server.log()}")


def start_server(data_dir: Path, log_path: Path, extra_env: dict[str, str] | None = None,
                 timeout: float = 120, command: list[str] | None = None) -> Server:
    """Run `python app.py` (or `command`) and wait until /api/v1/health says ok."""
    server = launch_server(data_dir, log_path, extra_env, command)
    wait_until(server, "/api/v1/health", timeout)
    return server


def stop_server(server: Server) -> None:
    server.process.terminate()
    try:
        server.process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        server.process.kill()


def add_account(data_dir: Path, name: str, role: str, password: str,
                database_url: str = "") -> None:
    """Create a local account the way an operator does: `python -m classifier users add`."""
    env = app_env(data_dir, DATABASE_URL=database_url)
    done = subprocess.run([sys.executable, "-m", "classifier", "users", "add", name, "--role",
                           role, "--password-stdin"], cwd=ROOT, input=password + "\n",
                          env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr


def sign_in(page: Any, url: str, name: str, password: str) -> None:
    """Sign in through the /sign-in form in a Playwright page (as another person if someone
    is signed in), then open the app."""
    page.goto(f"{url}/sign-out", wait_until="domcontentloaded")
    page.goto(f"{url}/sign-in", wait_until="domcontentloaded")
    page.fill("#username", name)
    page.fill("#password", password)
    page.click("button[type=submit]")
    page.wait_for_url(f"{url}/")
    page.locator("#signed-in").get_by_text("Signed in as").wait_for()


@pytest.fixture
def server(trained_data_dir: Path, tmp_path: Path) -> Iterator[Server]:
    """A running app on a copy of the trained database, for one test (its own database)."""
    data_dir = tmp_path / "server-data"
    shutil.copytree(trained_data_dir, data_dir)
    running = start_server(data_dir, tmp_path / "server.log")
    yield running
    stop_server(running)


@pytest.fixture(scope="module")
def module_server(trained_data_dir: Path, tmp_path_factory: pytest.TempPathFactory
                  ) -> Iterator[Server]:
    """A running app shared by a module's tests (each reads only what its own calls left)."""
    folder = tmp_path_factory.mktemp("module-server")
    shutil.copytree(trained_data_dir, folder / "data")
    running = start_server(folder / "data", folder / "server.log")
    yield running
    stop_server(running)


# The chaos modules' servers (tests/e2e/test_chaos*.py): no rate limits, so the load is not
# refused before it reaches what is being faulted.
CHAOS_ENV = {"UI_RATE_LIMIT_PER_MINUTE": "0", "RATE_LIMIT_PER_MINUTE": "0"}


@pytest.fixture
def proxied_server(postgres_settings: Settings, small_model: SmallModel,
                   tmp_path: Path) -> Iterator[tuple[Server, TcpProxy, str]]:
    """A server whose PostgreSQL connections go through a proxy the test can cut."""
    install_model(postgres_settings, small_model, promote=True)
    direct = postgres_settings.effective_database_url
    with TcpProxy(5432) as proxy:
        proxied = direct.replace("127.0.0.1:5432", f"127.0.0.1:{proxy.port}")
        server = start_server(tmp_path / "data", tmp_path / "server.log", extra_env={
            **CHAOS_ENV, "DATABASE_URL": proxied})
        try:
            yield server, proxy, direct
        finally:
            stop_server(server)
            dispose_engines()


@pytest.fixture
def server_env(trained_data_dir: Path, tmp_path: Path) -> Iterator[Server]:
    """A running app on a copy of the trained database, without rate limits, for one test."""
    data_dir = tmp_path / "data"
    shutil.copytree(trained_data_dir, data_dir)
    server = start_server(data_dir, tmp_path / "server.log", extra_env=CHAOS_ENV)
    yield server
    stop_server(server)


CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update"]


# The two screens every page is tried on: a laptop and a phone.
VIEWPORTS = {"laptop": {"width": 1366, "height": 900}, "phone": {"width": 390, "height": 844}}
BROWSER_TIMEOUT_MS = 30_000


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Debian's Chromium driven by Playwright (never `playwright install`), one per module."""
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as p:
        launched = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield launched
        launched.close()


@pytest.fixture(params=list(VIEWPORTS))
def page(request: pytest.FixtureRequest, browser: Any, tmp_path: Path) -> Iterator[Any]:
    """A fresh page at each of VIEWPORTS (modules with their own `page` override this); a
    failing test leaves a screenshot and prints where."""
    expect = pytest.importorskip("playwright.sync_api").expect
    failed_before = request.session.testsfailed
    context = browser.new_context(viewport=VIEWPORTS[request.param])
    page = context.new_page()
    page.set_default_timeout(BROWSER_TIMEOUT_MS)
    expect.set_options(timeout=BROWSER_TIMEOUT_MS)
    yield page
    if request.session.testsfailed > failed_before:
        shot = tmp_path / "failure.png"
        page.screenshot(path=str(shot), full_page=True)
        print(f"screenshot of the failure: {shot}")
    context.close()


# --- tiers ----------------------------------------------------------------------------------
# Every test is exactly one of unit, db or e2e, decided here from what it uses (see
# docs/TESTING.md); browser, chaos, slow and alone come on top. The fast tier is
# `-m "not e2e and not slow and not chaos"`. Two guards keep the tiers honest: a unit test
# that opens a database, or a unit or db test that starts a server, fails and says what to
# change.
TIERS = ("unit", "db", "e2e")
# Fixtures that run `python app.py` (or a browser against it): their users are e2e.
E2E_FIXTURES = frozenset({
    "server", "module_server", "browser", "roles_server", "app", "models_server",
    "monitoring_server", "pii_server", "proxied_server", "server_env", "app_server",
    "admin_server", "workbench_server", "replicas"})
# Fixtures that hand a test a real SQLite file or PostgreSQL schema (or a model trained
# through one): their users are db.
DB_FIXTURES = frozenset({
    "settings", "sqlite_settings", "postgres_settings", "live_settings",
    "live_sqlite_settings", "small_model", "trained_data_dir"})


class _Running:
    """The tier of the test this process is running (None between tests)."""
    tier: str | None = None


_running = _Running()
_open_engine = feedback.db.open_engine


def _guarded_open_engine(settings: Settings):  # type: ignore[no-untyped-def]
    if _running.tier == "unit":
        pytest.fail("a unit test opens a database: take the `settings` fixture (or another "
                    "of DB_FIXTURES) or mark it db (tests/conftest.py)", pytrace=False)
    return _open_engine(settings)


feedback.db.open_engine = _guarded_open_engine


def tier_of(item: pytest.Item) -> str:
    """e2e if marked so or using a server fixture, db if using a database fixture or marked
    db, unit otherwise."""
    marked = [t for t in TIERS if item.get_closest_marker(t) is not None]
    if len(marked) > 1:
        raise pytest.UsageError(f"{item.nodeid}: marked {' and '.join(marked)}; pick one")
    if marked:
        return marked[0]
    used = set(getattr(item, "fixturenames", ()))
    if used & E2E_FIXTURES or item.get_closest_marker("browser") is not None:
        return "e2e"
    if used & DB_FIXTURES:
        return "db"
    return "unit"


# Tests that take most of a minute or more start first, so that with several workers
# (pytest -n 2) none of them is left running alone at the end.
LONG_FIRST = ("slow", "chaos")


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None,
                            ) -> Generator[None, object, object]:
    """Tests marked `alone` measure time (latency ratios, response deadlines): with several
    workers, each waits until no other test runs, and no other test starts until it is done.

    A readers-writer lock across the workers' processes: every test holds a shared lock on
    one file, an `alone` test an exclusive one. The turnstile keeps a waiting `alone` test
    from being overtaken by a stream of ordinary tests.
    """
    _running.tier = tier_of(item)
    try:
        return (yield from _alone_or_together(item))
    finally:
        _running.tier = None


def _alone_or_together(item: pytest.Item) -> Generator[None, object, object]:
    run = os.environ.get("PYTEST_XDIST_TESTRUNUID")
    if run is None:  # a single process: nothing runs beside any test
        return (yield)
    folder = Path(tempfile.gettempdir())
    alone = item.get_closest_marker("alone") is not None
    with open(folder / f"pytest-{run}.turnstile", "a") as turnstile, \
            open(folder / f"pytest-{run}.lock", "a") as lock:
        fcntl.flock(turnstile, fcntl.LOCK_EX)
        if not alone:
            fcntl.flock(turnstile, fcntl.LOCK_UN)
        fcntl.flock(lock, fcntl.LOCK_EX if alone else fcntl.LOCK_SH)
        try:
            return (yield)
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
            fcntl.flock(turnstile, fcntl.LOCK_UN)


def _run_order(item: pytest.Item) -> int:
    """Long tests first, then the other tests that start servers or browsers (tens of
    seconds each), then the many short ones, so each worker ends on short tests. `alone`
    tests last, in modules of their own (`--dist loadscope` keeps a module on one worker):
    they wait for whatever runs on the other worker, and by then that is a short test."""
    if item.get_closest_marker("alone") is not None:
        return 3
    if any(item.get_closest_marker(mark) is not None for mark in LONG_FIRST):
        return 0
    return 1 if tier_of(item) == "e2e" else 2


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Each test gets its tier's marker; long tests first; browser tests need Debian's
    Chromium: skipped with a hint on a developer machine without it, but never in CI, where
    .ci/run installs it and a skip would hide a failure."""
    for item in items:
        tier = tier_of(item)
        if item.get_closest_marker(tier) is None:
            item.add_marker(tier)
        # Travels with the reports to the controller (keywords would also match folder names).
        item.user_properties.append(("time_group", _time_group(item)))
    items.sort(key=_run_order)
    if CHROMIUM.exists() or os.environ.get("CI"):
        return
    skip = pytest.mark.skip(reason="needs Debian's chromium: apt-get install chromium")
    for item in items:
        if "browser" in item.keywords:
            item.add_marker(skip)


# --- time per tier, printed at the end of every run -----------------------------------------
FAST_TIER = "fast (unit, db)"  # -m "not e2e and not slow and not chaos"
_tier_time: dict[str, list[float]] = {}  # group -> [tests, seconds of setup+call+teardown]
_started = time.monotonic()


def _time_group(item: pytest.Item) -> str:
    marks = {m.name for m in item.iter_markers()}
    if not {"slow", "chaos", "e2e"} & marks:
        return FAST_TIER
    for extra in ("browser", "chaos", "slow"):
        if extra in marks:
            return extra
    return "e2e"


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    """Sums each test's time by tier (in the controller too, under xdist)."""
    name = dict(report.user_properties).get("time_group", "other")
    group = _tier_time.setdefault(str(name), [0, 0.0])
    group[0] += report.when == "call" or (report.when == "setup" and report.skipped)
    group[1] += report.duration


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    """Seconds of test time per tier (setup, call and teardown, all workers together): the
    fast tier's line is what `-m "not e2e and not slow and not chaos"` costs, before dividing
    by the workers; and the wall time of the whole run."""
    if not _tier_time or os.environ.get("PYTEST_XDIST_WORKER"):
        return
    workers = getattr(config.option, "numprocesses", None) or 1
    terminalreporter.section("time per tier")
    for group in (FAST_TIER, "e2e", "browser", "chaos", "slow", "other"):
        if group in _tier_time:
            tests, seconds = _tier_time[group]
            terminalreporter.write_line(
                f"{group:>20}: {int(tests):5d} tests, {seconds:7.1f} s of test time "
                f"(/{workers} workers = {seconds / workers:6.1f} s)")
    terminalreporter.write_line(f"{'wall time':>20}: {time.monotonic() - _started:.1f} s "
                                f"for the whole run on {workers} worker(s)")
