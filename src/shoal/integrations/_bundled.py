"""What the bundled integration packages share: their default files, and their assembly.

Every integration package holds a ``port-app-config.yaml`` (its default mapping config) and a
``blueprints.json`` (its default blueprints) beside its ``__init__.py``. A
:class:`BundledPackage` reads them, afresh on every call so that callers may change what they
get; a file of the wrong shape is a :class:`~shoal.errors.ConfigError` naming the file and the
integration. Each package publishes the loaders as its ``load_default_mapping`` and
``load_default_blueprints``, and builds its :class:`~shoal.sync.integration.Integration` with
:meth:`BundledPackage.integration`::

    _PACKAGE = BundledPackage("git", Path(__file__).parent)
    load_default_mapping = _PACKAGE.load_mapping
    load_default_blueprints = _PACKAGE.load_blueprints

An integration whose kinds come from its configuration (``http``, ``sql``) ships a *template*
instead: a mapping with exactly one resource, in which :data:`KIND_PLACEHOLDER` stands for the
kind; :meth:`BundledPackage.load_kind_mapping` repeats that resource once per configured kind.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, cast

import shoal
from shoal.errors import ConfigError
from shoal.sync.integration import Integration, KindHandler, load_resource
from shoal.types import JSONObject

__all__ = ["BLUEPRINTS_FILE", "KIND_PLACEHOLDER", "MAPPING_FILE", "BundledPackage", "expand_kind"]

MAPPING_FILE: Final = "port-app-config.yaml"
BLUEPRINTS_FILE: Final = "blueprints.json"
KIND_PLACEHOLDER: Final = "@KIND@"


def expand_kind(value: Any, kind: str) -> Any:
    """``value`` (parsed YAML) with :data:`KIND_PLACEHOLDER` replaced by ``kind`` in all strings."""
    if isinstance(value, str):
        return value.replace(KIND_PLACEHOLDER, kind)
    if isinstance(value, dict):
        return {key: expand_kind(item, kind) for key, item in value.items()}
    if isinstance(value, list):
        return [expand_kind(item, kind) for item in value]
    return value


@dataclass(frozen=True)
class BundledPackage:
    """A bundled integration package: its integration type and the directory it ships in."""

    integration_type: str
    directory: Path

    def load_mapping(self) -> JSONObject:
        """The default mapping config (port-app-config), freshly parsed on every call."""
        mapping: Any = load_resource(self.directory, MAPPING_FILE)
        if not isinstance(mapping, dict):
            raise ConfigError(f"{MAPPING_FILE} of the {self._name} is not a mapping")
        return cast(JSONObject, mapping)

    def load_kind_mapping(self, kinds: Iterable[str]) -> JSONObject:
        """The default mapping config for ``kinds``: the shipped template's resource once per kind.

        Kind names are restricted (``[A-Za-z0-9][A-Za-z0-9_.-]*``, see
        :data:`~shoal.integrations._config_file.KindName`) by the config, so they are safe
        inside the template's jq string literals.
        """
        template: Any = load_resource(self.directory, MAPPING_FILE)
        if not isinstance(template, dict) or len(template.get("resources") or []) != 1:
            raise ConfigError(f"{MAPPING_FILE} of the {self._name} is not a one-resource template")
        resource = template["resources"][0]
        resources = [expand_kind(resource, kind) for kind in kinds]
        return cast(JSONObject, {**template, "resources": resources})

    def load_blueprints(self) -> list[JSONObject]:
        """The default blueprints (Port blueprint JSON), freshly parsed on every call."""
        blueprints: Any = load_resource(self.directory, BLUEPRINTS_FILE)
        if not isinstance(blueprints, list) or not all(isinstance(b, dict) for b in blueprints):
            raise ConfigError(f"{BLUEPRINTS_FILE} of the {self._name} is not a list of objects")
        return cast(list[JSONObject], blueprints)

    def integration(
        self, kinds: Iterable[str], resync: KindHandler, default_mapping: JSONObject
    ) -> Integration:
        """The integration, of this Shoal's version, with ``resync`` handling each of ``kinds``.

        Its default blueprints are :meth:`load_blueprints`'; ``resync`` is called with the kind
        to fetch, so one handler serves every kind.
        """
        integration = Integration(
            self.integration_type,
            version=shoal.__version__,
            default_mapping=default_mapping,
            default_blueprints=self.load_blueprints(),
        )
        for kind in kinds:
            integration.on_resync(kind)(resync)
        return integration

    @property
    def _name(self) -> str:
        return f"{self.integration_type} integration"
