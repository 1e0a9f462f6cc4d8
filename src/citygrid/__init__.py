"""citygrid: a city's component registry (城市部件).

Catalog, district hierarchy and unit grid, survey batches, validation and maps, for a
digital urban-management team.

Examples
--------
>>> import citygrid as cg
>>> len(cg.load_catalog())
136
"""

from citygrid import maps, settings, synth
from citygrid.admin import District, Profile, load_profile
from citygrid.backends import Store
from citygrid.catalog import Catalog, Category, load_catalog
from citygrid.errors import (
    AccessDenied,
    BatchError,
    CatalogError,
    CitygridError,
    DistrictError,
    InputError,
    MapError,
    MissingFile,
    NotFound,
    OutputError,
    RegistryConflict,
    RegistryError,
    RegistryExists,
    RegistryLocked,
    RegistryNotFound,
    UsageError,
)
from citygrid.io import read_batch
from citygrid.merge import IngestResult
from citygrid.normalise import normalise
from citygrid.registry import Registry, copy_registry, open_registry
from citygrid.schema import FIELDS, STATUSES, make_ids, next_ids, parse_ids
from citygrid.validation import RULES, Reference, Report, validate

__version__ = "0.1.0"

__all__ = [
    "AccessDenied",
    "BatchError",
    "Catalog",
    "CatalogError",
    "Category",
    "CitygridError",
    "District",
    "DistrictError",
    "FIELDS",
    "IngestResult",
    "InputError",
    "MapError",
    "MissingFile",
    "NotFound",
    "OutputError",
    "Profile",
    "RULES",
    "Reference",
    "Registry",
    "RegistryConflict",
    "RegistryError",
    "RegistryExists",
    "RegistryLocked",
    "RegistryNotFound",
    "Report",
    "STATUSES",
    "Store",
    "UsageError",
    "copy_registry",
    "load_catalog",
    "load_profile",
    "make_ids",
    "maps",
    "next_ids",
    "normalise",
    "open_registry",
    "parse_ids",
    "read_batch",
    "settings",
    "synth",
    "validate",
]
