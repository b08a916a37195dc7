"""task_counter (kept by triggers) always equals COUNT(*) of the tasks, whatever writes
them; listings filtered by status, priority, assignee and whether a due date is set
take their count from it."""

COUNTER = (
    "SELECT assigned_to_id, status, priority, has_due_date, n FROM task_counter "
    "WHERE n <> 0 ORDER BY 1, 2, 3, 4"
)
ACTUAL = (
    "SELECT assigned_to_id, status, priority, due_date IS NOT NULL, count(*) FROM task "
    "GROUP BY 1, 2, 3, 4 ORDER BY 1, 2, 3, 4"
)


def test_counter_follows_every_kind_of_write(
    api, runner, admin, intern, other_intern, make_task, sql
):
    tasks = [
        make_task(
            admin, assigned_to=person.id, status=status, priority=priority, due_date="2026-01-01"
        )
        for person in (intern, other_intern, admin)
        for status in ("PENDING", "IN_PROGRESS", "COMPLETED")
        for priority in ("LOW", "HIGH")
    ]
    assert sql(COUNTER) == sql(ACTUAL)
    for task, change in zip(
        tasks,
        [
            {"status": "COMPLETED"},
            {"priority": "MEDIUM"},
            {"assigned_to": other_intern.id},
            {"title": "only title"},
            {"status": "PENDING", "priority": "HIGH"},
            {"due_date": None},
        ],
        strict=False,
    ):
        response = api.as_(admin).patch(api.task(task["id"]), json=change)
        assert response.status_code == 200
    assert sql(COUNTER) == sql(ACTUAL)
    for task in tasks[-4:]:
        assert api.as_(admin).delete(api.task(task["id"])).status_code == 204
    assert sql(COUNTER) == sql(ACTUAL)
    assert (
        "marked 10 task(s)"
        in runner.invoke(args=["tasks", "mark-overdue", "--today", "2026-06-01"]).output
    )
    assert sql(COUNTER) == sql(ACTUAL)
    assert sql("SELECT sum(n) FROM task_counter WHERE status = 'OVERDUE'") == [(10,)]


def test_counter_survives_a_failed_transaction(api, intern, make_task, sql):
    make_task(intern, priority="HIGH")
    response = api.as_(intern).post("/api/tasks/", json={"title": "x", "assigned_to": 999})
    assert response.status_code == 403
    assert sql(COUNTER) == sql(ACTUAL) == [(intern.id, "PENDING", 3, False, 1)]


def test_list_count_from_counter_matches_rows(
    api, admin, intern, other_intern, make_task, count_queries
):
    for n in range(7):
        make_task(
            admin,
            assigned_to=(intern if n % 2 else other_intern).id,
            status="PENDING" if n % 3 else "COMPLETED",
            priority="HIGH" if n < 3 else "LOW",
            due_date=None if n in (2, 3) else "2026-01-01",
        )
    for query in (
        "",
        "status=PENDING",
        "priority=HIGH,LOW",
        f"assigned_to={intern.id}",
        f"status=COMPLETED&priority=LOW&assigned_to={other_intern.id}",
        "due_date__isnull=true",
        "due_date__isnull=false&status=PENDING",
    ):
        with count_queries() as statements:
            via_counter = api.as_(admin).get(f"/api/tasks/?{query}").get_json()
        assert any("task_counter" in s for s in statements), query
        rows = api.as_(admin).get(f"/api/tasks/?{query}&page_size=100").get_json()
        assert via_counter["count"] == len(rows["results"])
    for person in (intern, other_intern):
        for query in ("status=PENDING", "due_date__isnull=false"):
            mine = api.as_(person).get(f"/api/tasks/?{query}").get_json()
            assert mine["count"] == len(mine["results"]) > 0, (person.username, query)
            assert {t["assigned_to"] for t in mine["results"]} == {person.id}


def test_other_filters_count_rows(api, admin, make_task, count_queries):
    make_task(admin, due_date="2026-01-01")
    with count_queries() as statements:
        body = api.as_(admin).get("/api/tasks/?due_date__gte=2025-12-31").get_json()
    assert body["count"] == 1
    assert not any("task_counter" in s for s in statements)
