"""Task CRUD, listing and statistics."""

from flask import current_app, url_for
from flask.views import MethodView

from taskapp.db import reads
from taskapp.extensions import db
from taskapp.tasks import service
from taskapp.tasks.models import Task, task_etag
from taskapp.tasks.queries import NULLABLE_KEYS, change_stamp, listing, stats
from taskapp.tasks.schemas import (
    TaskPageSchema,
    TaskPatchSchema,
    TaskQueryArgsSchema,
    TaskSchema,
    TaskStatsSchema,
    TaskWriteSchema,
)
from taskapp.tasks.settings import TaskSettings
from taskapp.web.api import ETAG_HEADER, ID_IN_PATH, Blueprint, check_if_match
from taskapp.web.conditional import ListTag, not_modified
from taskapp.web.dumps import compile_dump, json_response
from taskapp.web.paging import Keyset, cursor_paginate, paginate, rows
from taskapp.web.permissions import current_user

blp = Blueprint("tasks", __name__, url_prefix="/api/tasks", description="Tasks")
NOT_VISIBLE = "No such task, or not the caller's"
LIST_ETAG_HEADER = {
    "ETag": {
        "description": "Version of this listing for this caller, for If-None-Match",
        "schema": {"type": "string"},
    }
}


def _today():
    return TaskSettings.of(current_app).today()


DUMP_TASK = compile_dump(TaskSchema())
"""The task answer, generated from TaskSchema (the one definition; see web/dumps.py)."""


def _with_etag(task, status: int = 200, **headers):
    """``task`` (a Task, or a row of its columns and assignee's username) answered."""
    etag = task_etag(task.id, task.version)
    return json_response(DUMP_TASK(task), status, {"ETag": etag, **headers})


def _task_page(page: dict, tag: ListTag):
    page["results"] = [DUMP_TASK(row) for row in page["results"]]
    return json_response(page, 200, {"ETag": tag.etag})


@blp.route("/")
class Tasks(MethodView):
    @blp.auth_required(scope="tasks:read")
    @blp.arguments(TaskQueryArgsSchema(), location="query")
    @blp.response(200, TaskPageSchema, headers=LIST_ETAG_HEADER)
    @blp.alt_response(304, description="Not modified: If-None-Match holds the current ETag")
    @blp.alt_response(404, schema="Error", description="Page past the end")
    def get(self, args):
        """List the tasks the caller may see, filtered, ordered and paginated"""
        tag = ListTag(change_stamp(current_user), current_user)
        if unchanged := tag.not_modified():
            return unchanged
        query, ordered, count = listing(current_user, args)
        size = args["page_size"]
        if "cursor" in args:
            keyset = Keyset(Task, args["ordering"], nullable=NULLABLE_KEYS)
            page = cursor_paginate(query, keyset, args["cursor"], size, tag=tag, fetch=rows)
        else:
            page = paginate(ordered, args["page"], size, count_query=count, tag=tag, fetch=rows)
        return _task_page(page, tag)

    @blp.auth_required(scope="tasks:write")
    @blp.idempotent()
    @blp.arguments(TaskWriteSchema())
    @blp.response(
        201, TaskSchema, headers={**ETAG_HEADER, "Location": {"schema": {"type": "string"}}}
    )
    @blp.alt_response(403, schema="Error", description="An INTERN assigning to someone else")
    def post(self, data):
        """Create a task"""
        task = service.create_task(db.session, current_user, data, _today())
        db.session.commit()
        location = url_for("tasks.TaskById", task_id=task.id, _external=True)
        return _with_etag(task, 201, Location=location)


@blp.route(f"/<{ID_IN_PATH}:task_id>/")
class TaskById(MethodView):
    @blp.auth_required(scope="tasks:read")
    @blp.response(200, TaskSchema, headers=ETAG_HEADER)
    @blp.alt_response(304, description="Not modified: If-None-Match holds the current ETag")
    @blp.not_found(NOT_VISIBLE)
    def get(self, task_id):
        """One task (304 to an If-None-Match holding its current ETag)"""
        row = service.get_visible_row(reads(db), current_user, task_id)
        etag = task_etag(row.id, row.version)
        return not_modified(etag) or json_response(DUMP_TASK(row), 200, {"ETag": etag})

    @blp.auth_required(scope="tasks:write")
    @blp.arguments(TaskPatchSchema(partial=True), required=False)
    @blp.if_match()
    @blp.response(200, TaskSchema, headers=ETAG_HEADER)
    @blp.not_found(NOT_VISIBLE)
    def patch(self, data, task_id):
        """Change some fields of a task"""
        return self._update(task_id, data)

    @blp.auth_required(scope="tasks:write")
    @blp.arguments(TaskWriteSchema())
    @blp.if_match()
    @blp.response(200, TaskSchema, headers=ETAG_HEADER)
    @blp.not_found(NOT_VISIBLE)
    def put(self, data, task_id):
        """Replace a task (title required; omitted optional fields keep their values)"""
        return self._update(task_id, data)

    @blp.auth_required(scope="tasks:write")
    @blp.if_match()
    @blp.response(204)
    @blp.not_found(NOT_VISIBLE)
    def delete(self, task_id):
        """Delete a task (its activity log stays)"""
        task = service.get_visible_task(db.session, current_user, task_id, for_update=True)
        check_if_match(task.etag)
        db.session.delete(task)
        db.session.commit()

    @staticmethod
    def _update(task_id: int, data: dict):
        task = service.get_visible_task(db.session, current_user, task_id, for_update=True)
        check_if_match(task.etag)
        service.update_task(db.session, current_user, task, data, _today())
        db.session.commit()
        return _with_etag(task)


@blp.route("/stats/")
class TaskStats(MethodView):
    @blp.auth_required(scope="tasks:read")
    @blp.response(200, TaskStatsSchema)
    def get(self):
        """Counts by status and by priority over the tasks the caller may see"""
        return stats(db.session, current_user)
