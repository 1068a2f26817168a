"""Push the boards to a Grafana through its HTTP API (grafana-client), for Grafanas without file provisioning."""

from __future__ import annotations

import copy
import logging
from typing import Any

from grafana_client import GrafanaApi, TokenAuth
from grafana_client.client import GrafanaClientError, GrafanaException

from dashboards.boards import all_boards
from dashboards.grafana import DATASOURCE_UID
from dashboards.provisioning import FOLDER

log = logging.getLogger(__name__)


class PushError(RuntimeError):
    """Grafana refused or could not be reached; the message says what to check."""


def with_datasource_uid(node: Any, uid: str) -> Any:
    """A copy of a board where every reference to the provisioned datasource names `uid` instead."""
    node = copy.deepcopy(node)

    def walk(x: Any) -> None:
        if isinstance(x, dict):
            if x.get("uid") == DATASOURCE_UID and "type" in x:
                x["uid"] = uid
            for v in x.values():
                walk(v)
        elif isinstance(x, list):
            for v in x:
                walk(v)

    walk(node)
    return node


def push(
    url: str, token: str, *, datasource_uid: str | None = None, folder_uid: str = "infrawatch", timeout: float = 10.0
) -> list[tuple[str, str]]:
    """Create the folder if needed and create or overwrite every board; returns (title, URL) pairs."""
    api = GrafanaApi.from_url(url, credential=TokenAuth(token), timeout=timeout)
    try:
        try:
            api.folder.get_folder(folder_uid)
        except GrafanaClientError as exc:
            if exc.status_code != 404:
                raise
            api.folder.create_folder(FOLDER, uid=folder_uid)
        pushed = []
        for board in all_boards().values():
            if datasource_uid:
                board = with_datasource_uid(board, datasource_uid)
            answer = api.dashboard.update_dashboard(
                {
                    "dashboard": board,
                    "folderUid": folder_uid,
                    "overwrite": True,
                    "message": "infrawatch dashboards push",
                }
            )
            pushed.append((board["title"], url.rstrip("/") + str(answer.get("url", ""))))
            log.info("dashboard pushed", extra={"event": "dashboards.pushed", "uid": board["uid"], "grafana": url})
        return pushed
    except GrafanaClientError as exc:
        hint = (
            " (check the token: it needs the Editor role or dashboards:write)" if exc.status_code in (401, 403) else ""
        )
        raise PushError(f"Grafana at {url} refused the request: {exc.status_code} {exc.message}{hint}") from exc
    except GrafanaException as exc:
        raise PushError(f"Grafana at {url} answered with an error: {exc}") from exc
    except OSError as exc:
        raise PushError(f"cannot reach Grafana at {url}: {exc}; check --url and the network") from exc
