"""Fixtures of the end-to-end tests: deployments of real service processes, always
stopped and removed afterwards (also when the test fails), with the services' logs
shown when it does."""
from __future__ import annotations

import pytest

from tests.e2e.support import Deployment


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    setattr(item, f"rep_{report.when}", report)


@pytest.fixture
def deploy(request, broker, postgres_url, tmp_path):
    """deploy(counties=..., env=..., process_env=...) -> a started Deployment."""
    made: list[Deployment] = []

    def _deploy(start: bool = True, **kwargs) -> Deployment:
        workdir = tmp_path / f"stack{len(made) + 1}"
        deployment = Deployment(broker, postgres_url, workdir, **kwargs)
        made.append(deployment)
        if start:
            deployment.start()
        return deployment

    yield _deploy
    failed = any(getattr(request.node, f"rep_{when}", None) is not None
                 and getattr(request.node, f"rep_{when}").failed for when in ("setup", "call"))
    for deployment in made:
        if failed:
            print(f"\n===== service logs of {deployment.vhost} =====\n{deployment.log_tails()}")
        deployment.close()
