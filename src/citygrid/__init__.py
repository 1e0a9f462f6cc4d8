"""citygrid: a city's component registry (城市部件).

Catalog, district hierarchy and unit grid, survey batches, validation and maps, for a
digital urban-management team.

Examples
--------
>>> import citygrid as cg
>>> len(cg.load_catalog())
136
"""

import importlib
from typing import TYPE_CHECKING

# Names are imported on first use, so `citygrid --help` does not pay for geopandas,
# folium and pandera (PEP 562).
_WHERE = {
    "AccessDenied": "citygrid.errors",
    "BatchError": "citygrid.errors",
    "BatchRejected": "citygrid.errors",
    "Catalog": "citygrid.catalog",
    "CatalogError": "citygrid.errors",
    "Category": "citygrid.catalog",
    "CitygridError": "citygrid.errors",
    "copy_registry": "citygrid.registry",
    "District": "citygrid.admin",
    "DistrictError": "citygrid.errors",
    "FIELDS": "citygrid.schema",
    "IngestResult": "citygrid.merge",
    "InputError": "citygrid.errors",
    "load_catalog": "citygrid.catalog",
    "load_event_types": "citygrid.events",
    "load_profile": "citygrid.admin",
    "make_ids": "citygrid.schema",
    "MapError": "citygrid.errors",
    "maps": "citygrid.maps",
    "MissingDependency": "citygrid.errors",
    "MissingFile": "citygrid.errors",
    "next_ids": "citygrid.schema",
    "normalise": "citygrid.normalise",
    "NotFound": "citygrid.errors",
    "open_registry": "citygrid.registry",
    "OutputError": "citygrid.errors",
    "parse_ids": "citygrid.schema",
    "Profile": "citygrid.admin",
    "read_batch": "citygrid.io",
    "read_events": "citygrid.events",
    "Reference": "citygrid.validation",
    "Registry": "citygrid.registry",
    "RegistryConflict": "citygrid.errors",
    "RegistryError": "citygrid.errors",
    "RegistryExists": "citygrid.errors",
    "RegistryLocked": "citygrid.errors",
    "RegistryNotFound": "citygrid.errors",
    "RegistryUnavailable": "citygrid.errors",
    "Report": "citygrid.validation",
    "RoutingTable": "citygrid.routes",
    "RULES": "citygrid.validation",
    "settings": "citygrid.settings",
    "STATUSES": "citygrid.schema",
    "Store": "citygrid.backends",
    "synth": "citygrid.synth",
    "UsageError": "citygrid.errors",
    "validate": "citygrid.validation",
}

if TYPE_CHECKING:
    from citygrid import maps, settings, synth
    from citygrid.admin import District, Profile, load_profile
    from citygrid.backends import Store
    from citygrid.catalog import Catalog, Category, load_catalog
    from citygrid.errors import (
        AccessDenied,
        BatchError,
        BatchRejected,
        CatalogError,
        CitygridError,
        DistrictError,
        InputError,
        MapError,
        MissingDependency,
        MissingFile,
        NotFound,
        OutputError,
        RegistryConflict,
        RegistryError,
        RegistryExists,
        RegistryLocked,
        RegistryNotFound,
        RegistryUnavailable,
        UsageError,
    )
    from citygrid.events import load_event_types, read_events
    from citygrid.io import read_batch
    from citygrid.merge import IngestResult
    from citygrid.normalise import normalise
    from citygrid.registry import Registry, copy_registry, open_registry
    from citygrid.routes import RoutingTable
    from citygrid.schema import FIELDS, STATUSES, make_ids, next_ids, parse_ids
    from citygrid.validation import RULES, Reference, Report, validate


def __getattr__(name: str):
    if name not in _WHERE:
        raise AttributeError(f"module 'citygrid' has no attribute {name!r}")
    module = importlib.import_module(_WHERE[name])
    value = module if module.__name__ == f"citygrid.{name}" else getattr(module, name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_WHERE))


__version__ = "0.1.0"

__all__ = sorted(_WHERE)  # the public names, declared once in _WHERE (and for type checkers above)
