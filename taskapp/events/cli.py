"""``flask events tail [--user NAME]``: the event stream on a terminal, as it happens
(what an operator watches a system with). One line per event: time, event name, task id,
title, actor and source; ``--json`` prints the message (the webhook body) instead."""

import json
import time

import click
from flask import current_app
from flask.cli import AppGroup

from taskapp.events import log, stream
from taskapp.extensions import db
from taskapp.users import service
from taskapp.visibility import HEARS, LOSES, hearing

events_cli = AppGroup("events", help="Watch task events as they happen.")
COMMANDS = (events_cli,)


@events_cli.command("tail")
@click.option("--user", "username", help="Show only what this user hears of.")
@click.option("--json", "as_json", is_flag=True, help="Print each message as JSON.")
@click.option("--poll", default=0.5, show_default=True, help="Seconds between reads.")
def tail(username: str | None, as_json: bool, poll: float) -> None:
    """Print events from now on until interrupted (Ctrl-C)."""
    user = log.EVERYONE
    if username is not None:
        user = service.find_by_username(db.session, username)
        if user is None:
            raise click.ClickException(f"no user named {username!r}")
    render = current_app.extensions["render_task"]
    position = log.head(db.session)
    db.session.rollback()
    click.echo("Watching task events from now on (Ctrl-C to stop).", err=True)
    try:
        while True:
            page = log.read(db.session, user, position, stream.READ_BATCH)
            for event in stream.build_events(db.session, page.entries, render, str):
                heard = hearing(user.role, user.id, event)
                if heard in (HEARS, LOSES):
                    message = event.message if heard == HEARS else event.removed
                    click.echo(_line(message, as_json), color=False)
            db.session.rollback()  # end the read: the next one sees newer commits
            position = page.end
            if len(page.entries) < stream.READ_BATCH:
                time.sleep(poll)
    except KeyboardInterrupt:
        pass


def _line(message: str, as_json: bool) -> str:
    if as_json:
        return message
    body = json.loads(message)
    task, data = body["data"]["task"], body["data"]
    title = task.get("title", "")
    return (
        f"{body['timestamp']} {body['type']:<13} #{task['id']} {title!r} "
        f"actor={data['actor']} source={data['source']}"
    )
