"""A small client of Label Studio's HTTP API: the projects, tasks and annotations a collection needs.

Label Studio runs in its own virtual environment (``make annotate``); the pipeline talks to it over HTTP
only, so its pins never meet ours. The token is sent as a header and kept out of every message this
module produces: errors name the method, the path and the server's answer, never the headers.
"""

from __future__ import annotations

from typing import Any

import requests

from rlhf_core.feedback.batches import Submitted

TIMEOUT_S = 60


class LabelStudioError(RuntimeError):
    """The server refused or failed a request."""


class LabelStudio:
    def __init__(self, url: str, token: str):
        self.url = url.rstrip("/")
        self._session = requests.Session()
        self._session.headers["Authorization"] = f"Token {token}"
        self._token = token

    def __repr__(self) -> str:  # never the token
        return f"LabelStudio({self.url!r})"

    def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        try:
            resp = self._session.request(method, f"{self.url}{path}", timeout=TIMEOUT_S, **kwargs)
        except requests.RequestException as err:
            raise LabelStudioError(
                f"{method} {self.url}{path}: {type(err).__name__}: cannot reach the server"
            ) from None
        if resp.status_code >= 400:  # the answer may quote the request: never the token
            body = resp.text[:300].replace(self._token, "<token>")
            raise LabelStudioError(f"{method} {path}: HTTP {resp.status_code}: {body}")
        return resp.json() if resp.content else None

    # ------------------------------------------------------------------ projects and tasks

    def project(self, title: str, label_config: str, annotators_per_item: int) -> int:
        """The id of the project with this title, created (or its page updated) as needed."""
        found = self._call("GET", "/api/projects", params={"title": title, "page_size": 1000})
        for proj in found.get("results", found) if isinstance(found, dict) else found:
            if proj["title"] == title:
                same_page = (proj.get("label_config") or "").strip() == label_config.strip()  # it drops the last \n
                if not same_page or proj.get("maximum_annotations") != annotators_per_item:
                    body = {"label_config": label_config, "maximum_annotations": annotators_per_item}
                    self._call("PATCH", f"/api/projects/{proj['id']}", json=body)
                return int(proj["id"])
        created = self._call(
            "POST",
            "/api/projects",
            json={
                "title": title,
                "label_config": label_config,
                "maximum_annotations": annotators_per_item,
                "show_skip_button": True,
            },
        )
        return int(created["id"])

    def tasks(self, project: int) -> list[dict[str, Any]]:
        """Every task of a project with its annotations (the JSON export)."""
        return self._call(
            "GET",
            f"/api/projects/{project}/export",
            params={"exportType": "JSON", "download_all_tasks": "true"},
        )

    def push(self, project: int, items: list[dict[str, Any]]) -> dict[str, int]:
        """Import the items not yet in the project (by ``item_id``): a second push adds nothing."""
        have = {t["data"].get("item_id") for t in self.tasks(project)}
        new = [{"data": item} for item in items if item["item_id"] not in have]
        if new:
            self._call("POST", f"/api/projects/{project}/import", json=new)
        return {
            "items": len(items),
            "pushed": len(new),
            "already_there": len(items) - len(new),
        }

    def users(self) -> dict[int, str]:
        return {
            int(u["id"]): u.get("email") or u.get("username") or str(u["id"]) for u in self._call("GET", "/api/users")
        }

    # ------------------------------------------------------------------ annotations

    def submitted(self, page: str, project: int, users: dict[int, str]) -> list[Submitted]:
        """Every submitted (not skipped) annotation of a project, with its annotator's e-mail."""
        out = []
        for task in self.tasks(project):
            for ann in task.get("annotations") or []:
                if ann.get("was_cancelled"):
                    continue
                who = ann.get("completed_by")
                who = who.get("id") if isinstance(who, dict) else who
                out.append(
                    Submitted(
                        page,
                        int(ann["id"]),
                        str(ann.get("updated_at") or ann.get("created_at")),
                        users.get(int(who), str(who)),
                        task["data"],
                        ann.get("result") or [],
                    )
                )
        return out

    def annotate(
        self,
        task_id: int,
        result: list[dict[str, Any]],
        completed_by: int | None = None,
    ) -> int:
        """Submit an annotation through the API (as the token's user, or as ``completed_by``)."""
        body: dict[str, Any] = {"result": result}
        if completed_by is not None:
            body["completed_by"] = completed_by
        return int(self._call("POST", f"/api/tasks/{task_id}/annotations", json=body)["id"])

    def add_user(self, email: str) -> int:
        """A user of the organisation (created when missing), for a second annotator."""
        for uid, mail in self.users().items():
            if mail == email:
                return uid
        return int(
            self._call(
                "POST",
                "/api/users",
                json={"email": email, "username": email.split("@")[0]},
            )["id"]
        )

    # ------------------------------------------------------------------ webhooks

    def add_webhook(self, project: int, url: str, headers: dict[str, str], actions: list[str]) -> int:
        """A webhook of the project that POSTs ``actions`` (with their payload) to ``url`` with ``headers``."""
        body = {
            "project": project,
            "url": url,
            "headers": headers,
            "actions": actions,
            "send_payload": True,
            "send_for_all_actions": False,
        }
        return int(self._call("POST", "/api/webhooks/", json=body)["id"])

    def remove_webhook(self, webhook: int) -> None:
        self._call("DELETE", f"/api/webhooks/{webhook}/")
