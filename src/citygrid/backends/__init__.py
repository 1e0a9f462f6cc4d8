"""Storage backends of the registry: ``gpkg`` (embedded, default) and, later, ``postgis``."""
