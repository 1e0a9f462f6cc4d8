"""What a new registry is made of: its district's components checked, in the registry's columns and layout.

:meth:`citygrid.Registry.create` takes a district (and optionally its components); this
module checks and shapes them into a :class:`~citygrid.backends.NewRegistry`, which a
backend writes all or nothing.
"""

from __future__ import annotations

import geopandas as gpd
import pandas as pd

from citygrid import settings
from citygrid._i18n import _
from citygrid.admin import District
from citygrid.backends import NewRegistry
from citygrid.catalog import Catalog, load_catalog
from citygrid.errors import RegistryError, UsageError
from citygrid.layout import to_layout
from citygrid.merge import Batch
from citygrid.schema import CJT214, FIELD_NAMES, LAYOUTS, conform
from citygrid.styles import registry_styles
from citygrid.validation import validate

__all__ = ["founding"]


def founding(district: District, *, catalog: Catalog | None = None, layout: str = CJT214.name,
             source: str = "initial load") -> NewRegistry:
    """The first batch of a registry: the district's components, checked, in its columns and `layout`.

    Raises
    ------
    UsageError
        For an unknown layout.
    RegistryError
        If a component has no identifier, or the components have errors (duplicate or
        malformed ids, missing or wrong geometries, unknown categories).
    """
    catalog = catalog or load_catalog()
    if layout not in LAYOUTS:
        raise UsageError(_("layout={layout!r} is not known; use one of {known}.").format(
            layout=layout, known=", ".join(sorted(LAYOUTS))))
    comps = district.components if district.components is not None else \
        gpd.GeoDataFrame({f: [] for f in FIELD_NAMES}, geometry=[], crs=district.crs)
    comps = to_layout(conform(comps.to_crs(settings.default_crs)), layout, catalog)
    if comps["component_id"].isna().any():
        raise RegistryError(_("{n} component(s) have no identifier; a registry is made from identified components "
                              "(ingest new ones instead).").format(n=int(comps["component_id"].isna().sum())))
    report = validate(comps, district=district, catalog=catalog,
                      rules=["schema.unknown_category", "id", "geom.missing", "geom.wrong_type"])
    if not report.ok:
        raise RegistryError(_("the district's components have errors, so no registry was made: {rules}. Validate "
                              "them with citygrid validate.").format(rules=report.summary_line()))
    batch = Batch(source=source, kind="create")
    comps = comps[list(FIELD_NAMES) + ["geometry"]].copy()
    comps["retired_at"] = pd.Series(pd.NaT, index=comps.index, dtype="datetime64[ms]")
    comps["version"] = 1
    comps["updated_at"] = pd.Timestamp(batch.started).as_unit("ms")
    comps["batch_id"] = 1
    meta = {"layout": layout, "admin_code": district.code, "district_name": district.name,
            "crs": settings.default_crs, "created_at": batch.started}
    return NewRegistry(district=district, components=comps, catalog=catalog.to_frame(),
                       units=district.units.rename(columns={"name": "name_zh"}), meta=meta, batch=batch,
                       styles=tuple(registry_styles(catalog, layout=layout)))
