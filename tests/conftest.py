import os

import pytest

import runtime._defaults


@pytest.fixture(params=[pytest.param("asyncio", id="asyncio"), pytest.param("trio", id="trio")])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(autouse=True)
def _flowactor_home(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Keep every test's default store out of the real ~/.flowactor (one home per test).

    `Runtime()` defaults to SQLite in $FLOWACTOR_HOME. Tests get `memory://` as their default
    (deterministic scheduling) unless FLOWACTOR_TEST_STORE=sqlite runs the whole suite on the
    real default; tests of the default itself remove FLOWACTOR_STORE.
    """
    monkeypatch.setenv("FLOWACTOR_HOME", str(tmp_path_factory.mktemp("flowactor-home")))
    monkeypatch.setattr(runtime._defaults, "_stores", {})  # a fresh default store per test
    if os.environ.get("FLOWACTOR_TEST_STORE") == "sqlite":
        monkeypatch.delenv("FLOWACTOR_STORE", raising=False)
    else:
        monkeypatch.setenv("FLOWACTOR_STORE", "memory://")
