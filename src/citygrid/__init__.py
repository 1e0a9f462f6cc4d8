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
from citygrid.catalog import Catalog, CatalogError, Category, load_catalog
from citygrid.io import BatchError, read_batch
from citygrid.registry import IngestResult, Registry, RegistryError, copy_registry, open_registry
from citygrid.schema import FIELDS, STATUSES, make_ids, next_ids, parse_ids
from citygrid.validate import Report, validate

__version__ = "0.1.0"

__all__ = [
    "BatchError",
    "Catalog",
    "CatalogError",
    "Category",
    "District",
    "FIELDS",
    "IngestResult",
    "Profile",
    "Registry",
    "RegistryError",
    "Report",
    "STATUSES",
    "load_catalog",
    "load_profile",
    "make_ids",
    "maps",
    "next_ids",
    "open_registry",
    "copy_registry",
    "parse_ids",
    "read_batch",
    "settings",
    "synth",
    "validate",
]
