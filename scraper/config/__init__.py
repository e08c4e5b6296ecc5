"""Settings: the schema of every key (``schema``), the typed sections built from it
(``settings``), and reading config files and layering them (``loading``)."""

from .loading import (ConfigFile, Layer, load_config, merge_settings, parse_cli_settings,
                      resolve_settings)
from .schema import DEFAULT_USER_AGENT, SCHEMA, Setting, check_layer, flatten
from .settings import (BackendSettings, CrawlSettings, FetchSettings, ExportSettings,
                       HttpCacheSettings, LimitSettings, PolitenessSettings, RetrySettings, ScheduleSettings,
                       Settings)

__all__ = ["DEFAULT_USER_AGENT", "SCHEMA", "BackendSettings", "ConfigFile", "CrawlSettings",
           "FetchSettings", "ExportSettings", "HttpCacheSettings", "Layer", "LimitSettings", "PolitenessSettings",
           "RetrySettings", "ScheduleSettings", "Setting", "Settings", "check_layer", "flatten",
           "load_config", "merge_settings", "parse_cli_settings", "resolve_settings"]
