import os
import tempfile

import pytest
from hypothesis import settings

from citygrid import settings as cg_settings
from citygrid import synth

# run by the system Python, where Debian's QGIS lives (tests/test_styles.py), not imported by pytest
collect_ignore = ["qgis_look.py"]

# the library speaks the machine's language (settings.language from CITYGRID_LANG or the locale); the
# tests read its English messages unless a test chooses Chinese (tests/test_i18n.py)
cg_settings.language = "en"
# a shared registry's client cache goes to a folder of this run, not to the user's ~/.cache
cg_settings.cache_dir = tempfile.mkdtemp(prefix="citygrid-cache-")
os.environ["CITYGRID_CACHE_DIR"] = cg_settings.cache_dir  # and the commands the tests run

# speed is measured in benchmarks/, not by a deadline: on a busy 2-core CI machine the first
# example of a property (imports, compiled patterns) can take longer than hypothesis's 200 ms
settings.register_profile("citygrid", deadline=None)
settings.load_profile("citygrid")


@pytest.fixture(scope="session")
def small_district():
    """A clean 3,000-component district (the full Pingshan grid)."""
    return synth.make_district(seed=0, n_components=3_000)


@pytest.fixture(scope="session")
def defect_district():
    """A 12,000-component district with injected faults and their ground truth."""
    return synth.make_district(seed=1, n_components=12_000, defects=True)


@pytest.fixture(scope="session")
def cluster():
    """A throwaway PostgreSQL + PostGIS server (skipped where none can start, unless required)."""
    from postgres import Cluster

    try:
        server = Cluster()
    except (RuntimeError, OSError) as exc:
        if os.environ.get("CITYGRID_REQUIRE_POSTGRES"):
            raise
        pytest.skip(f"no PostgreSQL server could be started here: {exc}")
    yield server
    server.stop()
