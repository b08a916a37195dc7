"""The schema comes from the migrations, and the migrations match the models."""

import pytest
import sqlalchemy as sa

from taskapp.extensions import db


@pytest.mark.filterwarnings("ignore:Skipped unsupported reflection of expression-based index")
@pytest.mark.filterwarnings("ignore:autogenerate skipping metadata-specified expression-based")
def test_models_and_migrations_agree(app, runner):
    """``flask db check`` exits non-zero when autogenerate finds any difference."""
    result = runner.invoke(args=["db", "check"])
    assert result.exit_code == 0, result.output


def test_downgrade_then_upgrade(app, runner):
    assert runner.invoke(args=["db", "downgrade", "base"]).exit_code == 0
    with app.app_context():
        assert "task" not in sa.inspect(db.engine).get_table_names()
    assert runner.invoke(args=["db", "upgrade"]).exit_code == 0
    with app.app_context():
        tables = set(sa.inspect(db.engine).get_table_names())
    assert {"user_account", "task", "activity_log", "revoked_token"} <= tables
