"""The registry as a read-only OGC API – Features service, on pygeoapi (``citygrid serve``).

Other systems (the 12345 platform, the departments' apps, QGIS's "Add OGC API – Features
layer") read the registry over HTTP without a copy of the file or a database account:

- ``/collections/components/items``: the current components, filtered by ``bbox`` (WGS84)
  and by any queryable (``category``, ``street``, ``community``, ``grid``, ``status``,
  ``owner``, ``maintainer``, ``department``, ``unit`` — names or codes, as
  :meth:`citygrid.Registry.query` takes them), paged with ``limit`` and ``offset``;
- ``streets``, ``communities``, ``grid`` (unit grid cells) and ``catalog`` (the categories);
- ``/owner?x=…&y=…&crs=…``: "whose is this" at a point, in WGS84 or GCJ-02 (``crs=gcj02``),
  the same answer as ``citygrid owner --json``.

pygeoapi answers the standard's requests (landing page, conformance, OpenAPI, collections,
queryables, items, paging links, limits); the providers below read the registry through
:class:`citygrid.Registry`, opened once per process and read again only when its state
changes. The service has no route that writes; on PostGIS it refuses a role that may write.
Every refusal is a one-line JSON body (``{"code": …, "description": …}``) with a 4xx status,
never a traceback.

Needs the ``serve`` extra: ``pip install 'citygrid[serve]'``.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Callable
from typing import Any
from urllib.parse import unquote

import geopandas as gpd
import numpy as np
import pandas as pd

from citygrid import settings
from citygrid._i18n import _
from citygrid.errors import CitygridError, UsageError, require
from citygrid.lookup import owner_answer
from citygrid.registry import Registry, open_registry

__all__ = ["COMPONENT_FILTERS", "make_app", "service_config"]

CRS84 = "http://www.opengis.net/def/crs/OGC/1.3/CRS84"

COMPONENT_FILTERS = ("category", "street", "community", "grid", "status", "owner", "maintainer", "department", "unit")
"""The component queryables that take a name or a code (``unit``: owner or maintainer)."""

_COLLECTIONS: dict[str, tuple[str, str, str]] = {
    # collection: Chinese title, English title, provider class
    "components": ("城市部件", "Components", "ComponentsProvider"),
    "streets": ("街道", "Streets", "StreetsProvider"),
    "communities": ("社区", "Communities", "CommunitiesProvider"),
    "grid": ("单元网格", "Unit grid cells", "GridProvider"),
    "catalog": ("部件类别", "Component categories", "CatalogProvider"),
}

_base: Any = require("pygeoapi.provider.base", _("citygrid serve"), "serve")  # the extra, checked on import
_BaseProvider: Any = _base.BaseProvider
_lock = threading.Lock()
_opened: dict[str, Registry] = {}
_columns: dict[tuple[str, str], dict] = {}


def _registry(target: str) -> Registry:
    """The registry at `target`, opened once per process (its components are read again when its state changes)."""
    with _lock:
        if target not in _opened:
            _opened[target] = open_registry(target)
        return _opened[target]


class _Provider(_BaseProvider):
    """What every collection's provider shares: a registry frame, filtered by equality and bbox, paged as GeoJSON.

    pygeoapi makes a provider per request (``provider_def`` from the configuration); the
    registry it reads is opened, and each collection's fields listed, once per process.
    """

    id_column = "code"
    filters: tuple[str, ...] = ()

    def __init__(self, provider_def: dict) -> None:
        super().__init__(provider_def)
        self.registry = _registry(self.data)
        key = (type(self).__name__, self.data)
        if key not in _columns:  # a collection's columns are those of every state: not read again per request
            _columns[key] = self.get_fields()
        self._fields = _columns[key]

    # --- what a subclass gives ------------------------------------------------------------
    def frame(self) -> gpd.GeoDataFrame:
        """Every feature of the collection, in the registry's CRS (or without geometry)."""
        raise NotImplementedError

    def select(self, filters: dict[str, str], bbox: list | None) -> gpd.GeoDataFrame:
        """The features whose columns equal the given values and, with `bbox` (WGS84), that meet the box."""
        frame = self.frame()
        if bbox:  # the frame's spatial index is kept with it (the registry's, once per state)
            frame = frame.iloc[np.sort(frame.sindex.query(_box(bbox), predicate="intersects"))]
        return _equal(frame, filters)

    # --- pygeoapi's provider interface ---------------------------------------------------
    @property
    def fields(self) -> dict:
        """The collection's properties and their JSON Schema types (pygeoapi's queryables)."""
        return self._fields

    def get_fields(self) -> dict:
        """The properties of the collection's features and their JSON Schema types."""
        out: dict[str, dict] = {}
        for column, dtype in self.frame().dtypes.items():
            if column == "geometry":
                continue
            if pd.api.types.is_integer_dtype(dtype):
                out[column] = {"type": "integer"}
            elif pd.api.types.is_float_dtype(dtype):
                out[column] = {"type": "number"}
            elif pd.api.types.is_datetime64_any_dtype(dtype):
                out[column] = {"type": "string", "format": "date-time"}
            else:
                out[column] = {"type": "string"}
        return out

    def get_schema(self, schema_type: Any = None) -> tuple[str, dict]:
        """The JSON Schema of a feature's properties."""
        return "application/geo+json", {"$schema": "http://json-schema.org/draft/2019-09/schema",
                                        "type": "object", "properties": self.fields}

    def get_metadata(self) -> dict:
        return {}

    def get_domains(self, properties: list | None = None, current: bool = False) -> tuple[dict, bool]:
        return {}, False

    def query(  # noqa: PLR0913 - pygeoapi's provider interface
            self, offset: int = 0, limit: int = 10, resulttype: str = "results", bbox: list | None = None,
              datetime_: str | None = None, properties: list | None = None, sortby: list | None = None,
              select_properties: list | None = None, skip_geometry: bool = False, q: str | None = None,
              filterq: Any = None, **_kwargs: Any) -> dict:
        """A page of features matching the request (pygeoapi has checked bbox, limit and offset)."""
        if filterq is not None:
            self._refuse(_("filter is not supported; filter with the queryables as parameters, e.g. "
                           "?street=…&category=…"))
        if datetime_ is not None:
            self._refuse(_("datetime is not supported: the collection has no time"))
        wanted = dict(properties or [])
        unknown = sorted(set(wanted) - set(self.fields) - set(self.filters))
        if unknown:
            self._refuse(_("unknown parameter {names}; the queryables are {known}").format(
                names=", ".join(unknown), known=", ".join(sorted({*self.filters, *self.fields}))))
        try:
            found = self.select(wanted, bbox)
        except CitygridError as exc:  # an unknown street, category, unit …: a value that matches nothing
            self._refuse(str(exc))
        if q:
            text = found.drop(columns="geometry").astype("string")
            found = found[text.apply(lambda col: col.str.contains(q, regex=False)).any(axis=1).fillna(False)]
        if sortby:
            found = found.sort_values([s["property"] for s in sortby], kind="stable",
                                      ascending=[s["order"] == "+" for s in sortby])
        result: dict[str, Any] = {"type": "FeatureCollection", "numberMatched": len(found)}
        if resulttype == "hits":
            result.update(features=[], numberReturned=0)
            return result
        page = found.iloc[offset:offset + limit]
        result["features"] = self._features(page, select_properties or [], skip_geometry)
        result["numberReturned"] = len(result["features"])
        return result

    def get(self, identifier: str, **_kwargs: Any) -> dict:
        """One feature by its identifier."""
        frame = self.frame()
        hit = frame[frame[self.id_column] == identifier]
        if hit.empty:
            raise _base.ProviderItemNotFoundError(user_msg=_("no {what} {id!r}").format(
                what=self.id_column, id=identifier))
        return self._features(hit.iloc[:1], [], False)[0]

    def create(self, item: Any) -> None:
        self._refuse(_("the service only reads"))

    update = delete = create

    # --- helpers -------------------------------------------------------------------------
    def _refuse(self, message: str) -> None:
        raise _base.ProviderInvalidQueryError(user_msg=" ".join(message.split()))

    def _features(self, page: gpd.GeoDataFrame, keep: list[str], skip_geometry: bool) -> list[dict]:
        """GeoJSON features of `page`: WGS84 geometry, JSON values (dates in ISO 8601, missing as null)."""
        columns = [c for c in page.columns if c != "geometry" and (not keep or c in keep)]
        values = {c: _json_values(page[c]) for c in columns}
        geoms: list[Any] = [None] * len(page)
        if not skip_geometry and page.geometry.notna().any():
            geoms = [None if text is None else json.loads(text) for text in _geojson(page)]
        ids = page[self.id_column].tolist()
        return [{"type": "Feature", "id": ids[k], "geometry": geoms[k],
                 "properties": {c: values[c][k] for c in columns}} for k in range(len(page))]


def _json_values(column: pd.Series) -> list:
    """The values of `column` as JSON takes them: dates in ISO 8601, missing as None (JSON has no NaN)."""
    if pd.api.types.is_datetime64_any_dtype(column):
        column = column.dt.strftime("%Y-%m-%dT%H:%M:%S")
    values = column.to_numpy(dtype=object)
    missing = pd.isna(values)
    if missing.any():
        values[missing] = None
    return values.tolist()


def _equal(frame: gpd.GeoDataFrame, filters: dict[str, str]) -> gpd.GeoDataFrame:
    """The rows of `frame` whose columns equal the given values (as text)."""
    if not filters:
        return frame
    mask = np.ones(len(frame), dtype=bool)
    for column, value in filters.items():
        mask &= (frame[column].astype("string") == value).fillna(False).to_numpy()
    return frame[mask]


def _geojson(page: gpd.GeoDataFrame) -> list[str | None]:
    """Each geometry of `page` in WGS84 as GeoJSON text (None where missing)."""
    import shapely

    wgs84 = page.geometry.to_crs(settings.web_crs).to_numpy()
    return [None if g is None else text for g, text in zip(wgs84, shapely.to_geojson(wgs84), strict=True)]


def _box(bbox: list) -> Any:
    """A WGS84 bbox (as pygeoapi checked it) in the registry's CRS."""
    import shapely

    box = gpd.GeoSeries([shapely.box(*bbox[:4])], crs=settings.web_crs).to_crs(settings.default_crs)
    return box.iloc[0]


class ComponentsProvider(_Provider):
    """The current components; the filters of :meth:`citygrid.Registry.query` take names or codes."""

    id_column = "component_id"
    filters = COMPONENT_FILTERS

    def frame(self) -> gpd.GeoDataFrame:
        return self.registry.components

    def select(self, filters: dict[str, str], bbox: list | None) -> gpd.GeoDataFrame:
        by_name: dict[str, Any] = {k: v for k, v in filters.items() if k in self.filters}
        unit = by_name.pop("unit", None)
        if by_name:
            box: dict[str, Any] = {"bbox": tuple(bbox[:4]), "bbox_crs": settings.web_crs} if bbox else {}
            found = self.registry.query(**by_name, **box)
        else:
            found = super().select({}, bbox)
        if unit is not None:
            found = found[_of_unit(found, unit, self.registry)]
        return _equal(found, {k: v for k, v in filters.items() if k not in self.filters})


def _of_unit(frame: gpd.GeoDataFrame, unit: str, registry: Registry) -> np.ndarray:
    """Rows owned or maintained by `unit` (name or code); an unknown unit is refused as the query refuses it."""
    mask = np.zeros(len(frame), dtype=bool)
    refused = []
    for column in ("owner", "maintainer"):
        try:
            chosen = registry.query(owner=unit) if column == "owner" else registry.query(maintainer=unit)
        except CitygridError as exc:
            refused.append(exc)
            continue
        mask |= frame["component_id"].isin(chosen["component_id"]).to_numpy()
    if len(refused) == 2:
        raise refused[0]
    return mask


class _DistrictProvider(_Provider):
    layer = ""

    def frame(self) -> gpd.GeoDataFrame:
        return getattr(self.registry.district, self.layer)


class StreetsProvider(_DistrictProvider):
    """The district's streets (街道)."""

    layer = "streets"


class CommunitiesProvider(_DistrictProvider):
    """The district's communities (社区)."""

    layer = "communities"


class GridProvider(_DistrictProvider):
    """The district's unit grid cells (单元网格)."""

    layer = "grid"


class CatalogProvider(_Provider):
    """The categories of the registry's catalog (no geometry; its geometry type as ``geometry_type``)."""

    def frame(self) -> gpd.GeoDataFrame:
        table = self.registry.catalog.to_frame().rename(columns={"geometry": "geometry_type"})
        return gpd.GeoDataFrame(table, geometry=gpd.GeoSeries([None] * len(table), index=table.index))


def service_config(target: str, *, host: str = "127.0.0.1", port: int = 5000, url: str | None = None,
                   default_items: int = 100, max_items: int = 10_000) -> dict:
    """The pygeoapi configuration for serving the registry at `target` (GeoPackage path or PostGIS URL).

    Parameters
    ----------
    target : str
        The registry.
    host, port : str, int
        Where the service listens (``127.0.0.1``: this machine only).
    url : str, optional
        The address clients use (default ``http://HOST:PORT``), for the links in responses.
    default_items, max_items : int
        Features per page when ``limit`` is not given, and the most a request may ask for
        (more is refused with a 400).

    Raises
    ------
    UsageError
        For a PostGIS role that may change components (serve as a reader: see
        :func:`citygrid.backends.postgis.add_reader_role`).
    """
    registry = _registry(target)
    may_write = getattr(registry.store, "may_write", None)
    if may_write is not None and may_write():
        raise UsageError(_("citygrid serve reads a shared registry as a role that may only read, and {name} may "
                           "change components: create a reader as the database owner "
                           "(citygrid.backends.postgis.add_reader_role(url, 'name')) and give its URL.").format(
                               name=registry.name))
    box = gpd.GeoSeries([registry.district.boundary], crs=settings.default_crs).to_crs(settings.web_crs)
    bounds = [round(float(v), 6) for v in box.total_bounds]
    name = registry.district.name
    resources = {}
    for collection, (title_zh, title_en, provider) in _COLLECTIONS.items():
        resources[collection] = {
            "type": "collection",
            "title": {"zh": f"{name}{title_zh}", "en": f"{title_en} of {name}"},
            "description": {"zh": f"{name}{title_zh}（citygrid 部件登记册，只读）",
                            "en": f"{title_en} of {name} (citygrid registry, read-only)"},
            "keywords": {"zh": ["数字城管", title_zh], "en": ["urban management", title_en]},
            "links": [{"type": "application/schema+json", "rel": "describedby", "title": "JSON Schema",
                       "href": f"{url or f'http://{host}:{port}'}/collections/{collection}/schema?f=json"}],
            "extents": {"spatial": {"bbox": bounds, "crs": CRS84}},
            "providers": [{"type": "feature", "name": f"citygrid.serve.{provider}", "data": target,
                           "include_extra_query_parameters": True,  # unknown ones are refused, not ignored
                           "id_field": "component_id" if collection == "components" else "code",
                           "title_field": "name" if collection != "grid" else "code"}],
        }
    return {
        "server": {"bind": {"host": host, "port": port}, "url": url or f"http://{host}:{port}",
                   "mimetype": "application/json; charset=UTF-8", "encoding": "utf-8", "gzip": False,
                   "languages": ["zh", "en"], "pretty_print": False,
                   "limits": {"default_items": default_items, "max_items": max_items, "on_exceed": "error"},
                   "map": {"url": "", "attribution": ""}},
        "logging": {"level": "CRITICAL"},  # a refused request is answered, not logged with its traceback
        "metadata": {
            "identification": {"title": {"zh": f"{name}城市部件登记册", "en": f"Component registry of {name}"},
                               "description": {"zh": "数字城管部件：类别、标识、权属与位置（只读）",
                                               "en": "Urban-management components: category, id, ownership and "
                                                     "place (read-only)"},
                               "keywords": {"zh": ["数字城管", "城市部件"], "en": ["urban management", "components"]},
                               "keywords_type": "theme", "terms_of_service": "", "url": url or ""},
            "license": {"name": "", "url": ""},
            "provider": {"name": name, "url": ""},
            "contact": {"name": name, "position": "", "address": "", "city": "", "stateorprovince": "",
                        "postalcode": "", "country": "", "phone": "", "fax": "", "email": "", "url": "",
                        "hours": "", "instructions": "", "role": "pointOfContact"},
        },
        "resources": resources,
    }


def make_app(target: str, **options: Any) -> Any:
    """A WSGI application (Flask) serving the registry at `target` read-only.

    `options` are those of :func:`service_config`. Only ``GET`` (and ``HEAD``) is routed.

    Examples
    --------
    >>> client = make_app("registry.gpkg").test_client()  # doctest: +SKIP
    >>> client.get("/collections/components/items?street=马峦街道").json["numberMatched"]  # doctest: +SKIP
    2310
    """
    import flask
    from pygeoapi import api as core
    from pygeoapi.api import itemtypes as items
    from pygeoapi.openapi import get_oas

    config = service_config(target, **options)
    api = core.API(config, get_oas(config))
    app = flask.Flask("citygrid.serve")
    app.url_map.strict_slashes = False
    registry = _registry(target)

    def respond(function: Callable, *args: Any, check: bool = True) -> Any:
        request = core.APIRequest.from_flask(flask.request, api.locales)
        if check and not request.is_valid():
            headers, status, content = api.get_format_exception(request)
        else:
            headers, status, content = function(api, request, *args)
        response = flask.make_response(content, status)
        response.headers.update(headers or {})
        return response

    routes: dict[str, tuple[str, Callable, bool]] = {
        "/": ("landing", core.landing_page, True),
        "/openapi": ("openapi", core.openapi_, True),
        "/conformance": ("conformance", core.conformance, True),
        "/collections": ("collections", core.describe_collections, True),
        "/collections/<collection>": ("collection", core.describe_collections, True),
        "/collections/<collection>/queryables": ("queryables", items.get_collection_queryables, True),
        "/collections/<collection>/schema": ("schema", core.get_collection_schema, True),
        "/collections/<collection>/items": ("items", items.get_collection_items, False),
        "/collections/<collection>/items/<item>": ("item", items.get_collection_item, True),
    }
    for rule, (endpoint, function, check) in routes.items():
        def view(function: Callable = function, check: bool = check, **args: str) -> Any:
            return respond(function, *args.values(), check=check)
        app.add_url_rule(rule, endpoint, view, methods=["GET"])

    @app.get("/owner")
    def owner() -> Any:
        """Whose is this: ?x=LON&y=LAT[&crs=EPSG:4326|gcj02][&radius=M][&limit=N] (as ``citygrid owner --json``)."""
        args = flask.request.args
        try:
            x, y = _number(args, "x"), _number(args, "y")
            radius, limit = _number(args, "radius", 10.0), int(_number(args, "limit", 5))
            if not (0 < radius <= 1000 and 0 < limit <= 100):
                raise UsageError(_("radius must be in (0, 1000] metres and limit in 1 … 100"))
            found = registry.owner_at(x, y, crs=args.get("crs", "EPSG:4326"), radius=radius, limit=limit)
        except CitygridError as exc:
            return _error(400, "InvalidParameterValue", str(exc))
        return flask.Response(json.dumps(owner_answer(found), ensure_ascii=False, default=str),
                              mimetype="application/json")

    @app.errorhandler(404)
    def not_found(_exc: Any) -> Any:
        return _error(404, "NotFound", _("no such resource: {path}").format(path=flask.request.path))

    @app.errorhandler(405)
    def not_allowed(_exc: Any) -> Any:
        return _error(405, "MethodNotAllowed", _("the service only reads: {method} is not allowed").format(
            method=flask.request.method))

    @app.errorhandler(Exception)
    def failed(exc: Exception) -> Any:
        app.logger.exception("request failed")
        return _error(500, "ServerError", _("the request failed: {kind}").format(kind=type(exc).__name__))

    app.wsgi_app = _two_languages(app.wsgi_app)  # type: ignore[method-assign]
    return app


def _language(text: str) -> str:
    """``zh`` or ``en`` for a requested language (``zh-Hans-CN``, ``en-US;q=0.8`` …); empty for any other."""
    first = text.split(",")[0].strip().lower()
    return "zh" if first.startswith("zh") else "en" if first.startswith("en") else ""


def _two_languages(wsgi: Callable) -> Callable:
    """`wsgi` asked only in the service's languages, ``zh`` or ``en``.

    pygeoapi answers 500 to tags Babel resolves to a script (``zh-Hans``) or to no locale it
    holds; the service speaks Chinese and English, so a request's ``lang`` and
    ``Accept-Language`` are reduced to one of them (any other: the default, Chinese).
    """
    def reduced(environ: dict, start_response: Callable) -> Any:
        def one(match: re.Match) -> str:
            chosen = _language(unquote(match.group(2)))
            return f"{match.group(1)}lang={chosen}" if chosen else match.group(1)

        environ["QUERY_STRING"] = re.sub(r"(^|&)lang=([^&]*)", one, environ.get("QUERY_STRING", ""))
        if "HTTP_ACCEPT_LANGUAGE" in environ:
            environ["HTTP_ACCEPT_LANGUAGE"] = _language(environ["HTTP_ACCEPT_LANGUAGE"]) or "zh"
        return wsgi(environ, start_response)

    return reduced


def _number(args: Any, name: str, default: float | None = None) -> float:
    """The query parameter `name` as a finite number."""
    text = args.get(name)
    if text is None and default is not None:
        return default
    try:
        value = float(text)
    except (TypeError, ValueError):
        raise UsageError(_("{name}={value!r}: give a number").format(name=name, value=text)) from None
    if not np.isfinite(value):
        raise UsageError(_("{name}={value!r}: give a finite number").format(name=name, value=text))
    return value


def _error(status: int, code: str, message: str) -> Any:
    """A one-line JSON error body with its status."""
    import flask

    body = json.dumps({"code": code, "description": " ".join(message.split())}, ensure_ascii=False)
    return flask.Response(body + "\n", status=status, mimetype="application/json")
