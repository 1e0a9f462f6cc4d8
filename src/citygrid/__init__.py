"""citygrid: a city's component registry (城市部件).

Catalog, district hierarchy and unit grid, survey batches, validation and maps, for a
digital urban-management team.

Examples
--------
>>> import citygrid as cg
>>> len(cg.load_catalog())
136
"""

from citygrid import settings, synth
from citygrid.admin import District, Profile, load_profile
from citygrid.catalog import Catalog, CatalogError, Category, load_catalog
from citygrid.schema import FIELDS, STATUSES, make_ids, next_ids, parse_ids

__version__ = "0.1.0"

__all__ = [
    "Catalog",
    "CatalogError",
    "Category",
    "District",
    "FIELDS",
    "Profile",
    "STATUSES",
    "load_catalog",
    "load_profile",
    "make_ids",
    "next_ids",
    "parse_ids",
    "settings",
    "synth",
]
