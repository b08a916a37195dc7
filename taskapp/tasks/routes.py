"""Task CRUD, listing and statistics."""

from flask import abort, request, url_for
from flask.views import MethodView
from flask_jwt_extended import current_user
from sqlalchemy import func
from sqlalchemy.orm import joinedload

from taskapp.api import DEFAULT_DETAILS, ID_IN_PATH, Blueprint
from taskapp.extensions import db
from taskapp.models import Priority, Status, Task
from taskapp.pagination import paginate
from taskapp.tasks import service
from taskapp.tasks.queries import apply_filters, apply_ordering, counter_count, visible_tasks
from taskapp.tasks.schemas import (
    TaskPageSchema,
    TaskPatchSchema,
    TaskQueryArgsSchema,
    TaskSchema,
    TaskStatsSchema,
    TaskWriteSchema,
)

blp = Blueprint("tasks", __name__, url_prefix="/api/tasks", description="Tasks")

ETAG_HEADER = {
    "ETag": {"description": "Version of the task, for If-Match", "schema": {"type": "string"}}
}
IF_MATCH = {
    "in": "header",
    "name": "If-Match",
    "required": False,
    "description": "ETag from a previous answer; a stale one answers 412 and changes nothing.",
    "schema": {"type": "string"},
}


def _check_if_match(task: Task) -> None:
    """Optional optimistic concurrency: a stale If-Match answers 412. The row is locked
    (SELECT ... FOR UPDATE) and the UPDATE is conditional on the version, so of two
    writers holding the same ETag exactly one wins."""
    if "If-Match" not in request.headers:
        return
    if request.if_match.star_tag or request.if_match.contains(task.etag.strip('"')):
        return
    abort(412, DEFAULT_DETAILS[412])


def _with_etag(task: Task, status: int = 200, **headers):
    return task, status, {"ETag": task.etag, **headers}


@blp.route("/")
class Tasks(MethodView):
    @blp.auth_required()
    @blp.arguments(TaskQueryArgsSchema, location="query")
    @blp.response(200, TaskPageSchema)
    @blp.alt_response(404, schema="Error", description="Page past the end")
    def get(self, args):
        """List the tasks the caller may see, filtered, ordered and paginated"""
        query = apply_ordering(apply_filters(visible_tasks(current_user), args), args["ordering"])
        options = [joinedload(Task.assigned_to, innerjoin=True)]
        count = counter_count(current_user, args)
        return paginate(query, args["page"], args["page_size"], options=options, count_query=count)

    @blp.auth_required()
    @blp.arguments(TaskWriteSchema)
    @blp.response(
        201, TaskSchema, headers={**ETAG_HEADER, "Location": {"schema": {"type": "string"}}}
    )
    @blp.alt_response(403, schema="Error", description="An INTERN assigning to someone else")
    def post(self, data):
        """Create a task"""
        task = service.create_task(current_user, data)
        db.session.commit()
        location = url_for("tasks.TaskById", task_id=task.id, _external=True)
        return _with_etag(task, 201, Location=location)


@blp.route(f"/<{ID_IN_PATH}:task_id>/")
class TaskById(MethodView):
    @blp.auth_required()
    @blp.response(200, TaskSchema, headers=ETAG_HEADER)
    @blp.alt_response(404, schema="Error", description="No such task, or not the caller's")
    def get(self, task_id):
        """One task"""
        return _with_etag(service.get_visible_task(current_user, task_id))

    @blp.auth_required()
    @blp.arguments(TaskPatchSchema(partial=True))
    @blp.doc(parameters=[IF_MATCH])
    @blp.response(200, TaskSchema, headers=ETAG_HEADER)
    @blp.alt_response(404, schema="Error", description="No such task, or not the caller's")
    @blp.alt_response(412, schema="Error", description="If-Match is stale")
    def patch(self, data, task_id):
        """Change some fields of a task"""
        return self._update(task_id, data)

    @blp.auth_required()
    @blp.arguments(TaskWriteSchema)
    @blp.doc(parameters=[IF_MATCH])
    @blp.response(200, TaskSchema, headers=ETAG_HEADER)
    @blp.alt_response(404, schema="Error", description="No such task, or not the caller's")
    @blp.alt_response(412, schema="Error", description="If-Match is stale")
    def put(self, data, task_id):
        """Replace a task (title required; omitted optional fields keep their values)"""
        return self._update(task_id, data)

    @blp.auth_required()
    @blp.doc(parameters=[IF_MATCH])
    @blp.response(204)
    @blp.alt_response(404, schema="Error", description="No such task, or not the caller's")
    @blp.alt_response(412, schema="Error", description="If-Match is stale")
    def delete(self, task_id):
        """Delete a task (its activity log stays)"""
        task = service.get_visible_task(current_user, task_id, for_update=True)
        _check_if_match(task)
        db.session.delete(task)
        db.session.commit()

    @staticmethod
    def _update(task_id: int, data: dict):
        task = service.get_visible_task(current_user, task_id, for_update=True)
        _check_if_match(task)
        service.update_task(current_user, task, data)
        db.session.commit()
        return _with_etag(task)


@blp.route("/stats/")
class TaskStats(MethodView):
    @blp.auth_required()
    @blp.response(200, TaskStatsSchema)
    def get(self):
        """Counts by status and by priority over the tasks the caller may see"""
        visible = visible_tasks(current_user).subquery()
        query = db.select(visible.c.status, visible.c.priority, func.count()).group_by(
            visible.c.status, visible.c.priority
        )
        by_status = dict.fromkeys(Status, 0)
        by_priority = dict.fromkeys(Priority, 0)
        for status, priority, count in db.session.execute(query):
            by_status[Status(status)] += count
            by_priority[Priority(priority)] += count
        return {
            "total": sum(by_status.values()),
            "by_status": {key.value: value for key, value in by_status.items()},
            "by_priority": {key.value: value for key, value in by_priority.items()},
        }
