"""What grafana-foundation-sdk lacks for our boards: the PostgreSQL datasource's raw-SQL query, typed.

The SDK (grafana_foundation_sdk, release 11.6: Grafana's dashboard schema v1, schemaVersion 41, which Grafana
11 and 12 read) builds dashboards, panels and variables, but has no query type for the
grafana-postgresql-datasource plugin. `SqlQuery` is that query (a `Dataquery` variant registered with the
SDK's runtime, so `Dashboard.from_json` reads it back) and `SqlTarget` its builder. Every query goes to the
one provisioned PostgreSQL datasource (`DATASOURCE`).
"""

from __future__ import annotations

import enum
import typing

from grafana_foundation_sdk.cog import builder as cogbuilder
from grafana_foundation_sdk.cog import runtime as cogruntime
from grafana_foundation_sdk.cog import variants as cogvariants
from grafana_foundation_sdk.models import dashboard as model

#: The provisioned datasource every panel and variable uses (see dashboards/provisioning.py).
DATASOURCE_UID = "infrawatch-pg"
DATASOURCE_TYPE = "grafana-postgresql-datasource"

GRID_COLUMNS = 24

Json = dict[str, typing.Any]


def datasource_ref() -> model.DataSourceRef:
    """A reference to the provisioned datasource (a fresh object: the SDK's models are mutable)."""
    return model.DataSourceRef(type_val=DATASOURCE_TYPE, uid=DATASOURCE_UID)


class SqlFormat(enum.StrEnum):
    """Grafana's result format of a SQL query: a table, or time series (a `time` column first)."""

    TABLE = "table"
    TIME_SERIES = "time_series"


def dedent_sql(sql: str) -> str:
    """Strip the common indentation and surrounding blank lines, so the JSON reads well in Grafana."""
    lines = sql.splitlines()
    while lines and not lines[0].strip():
        lines.pop(0)
    while lines and not lines[-1].strip():
        lines.pop()
    indents = [len(line) - len(line.lstrip()) for line in lines if line.strip()]
    cut = min(indents) if indents else 0
    return "\n".join(line[cut:].rstrip() for line in lines)


class SqlQuery(cogvariants.Dataquery):
    """One raw-SQL target of the PostgreSQL datasource, written in code mode."""

    ref_id: str
    raw_sql: str
    format_val: SqlFormat
    datasource: model.DataSourceRef | None

    def __init__(
        self,
        ref_id: str = "A",
        raw_sql: str = "",
        format_val: SqlFormat = SqlFormat.TABLE,
        datasource: model.DataSourceRef | None = None,
    ) -> None:
        self.ref_id = ref_id
        self.raw_sql = raw_sql
        self.format_val = format_val
        self.datasource = datasource

    def to_json(self) -> dict[str, object]:
        payload: dict[str, object] = {"refId": self.ref_id}
        if self.datasource is not None:
            payload["datasource"] = self.datasource
        payload |= {"editorMode": "code", "format": self.format_val, "rawQuery": True, "rawSql": self.raw_sql}
        return payload

    @classmethod
    def from_json(cls, data: dict[str, typing.Any]) -> typing.Self:
        ds = data.get("datasource")
        return cls(
            ref_id=data.get("refId", "A"),
            raw_sql=data.get("rawSql", ""),
            format_val=SqlFormat(data.get("format", SqlFormat.TABLE)),
            datasource=model.DataSourceRef.from_json(ds) if isinstance(ds, dict) else None,
        )


class SqlTarget(cogbuilder.Builder[SqlQuery]):
    """Builds a `SqlQuery` against the provisioned datasource: `SqlTarget(sql).ref_id("B").time_series()`."""

    _internal: SqlQuery

    def __init__(self, sql: str) -> None:
        self._internal = SqlQuery(raw_sql=dedent_sql(sql), datasource=datasource_ref())

    def build(self) -> SqlQuery:
        return self._internal

    def ref_id(self, ref_id: str) -> typing.Self:
        self._internal.ref_id = ref_id
        return self

    def format(self, fmt: SqlFormat) -> typing.Self:
        self._internal.format_val = fmt
        return self

    def time_series(self) -> typing.Self:
        """Results as time series: the panel's SQL returns `time` first, then a `metric` or value columns."""
        return self.format(SqlFormat.TIME_SERIES)

    def datasource(self, datasource: model.DataSourceRef) -> typing.Self:
        self._internal.datasource = datasource
        return self


cogruntime.register_dataquery_variant(
    cogruntime.DataqueryConfig(identifier=DATASOURCE_TYPE, from_json_hook=SqlQuery.from_json)
)
