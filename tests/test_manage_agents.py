"""manage_agents: what an operator types is checked the way the directives check it."""

import json

import pytest

from execution import manage_agents as cmd
from execution.lib.errors import BadRequest


def _create(conn, **details):
    return cmd.create_agent(conn, org="nile", org_name="Nile", email="sara@nile.example", name="Sara",
                            password=None, **details)


@pytest.mark.parametrize("hours, reason", [
    ('{"sun": ["18:00", "09:00"]}', "sun: the closing time must come after the opening time"),
    ('{"sun": ["9:00", "18:00"]}', "sun: times are HH:MM"),
    ('{"sun": ["09:00", "25:00"]}', "sun: times are HH:MM"),
    ('{"sunday": ["09:00", "18:00"]}', "days mon..sun"),
    ('{}', "days mon..sun"),
    ('sun 9-6', "JSON such as"),
])
def test_working_hours_that_would_leave_no_viewing_time_are_refused(conn, hours, reason):
    _create(conn)
    with pytest.raises(BadRequest) as err:
        cmd.update_agent(conn, email="sara@nile.example", changes={"working_hours": hours}, actor="test")
    assert reason in str(err.value)


def test_a_week_is_stored_as_given(conn):
    _create(conn, phone="201001234567")
    week = {"sun": ["09:00", "18:00"], "mon": ["10:00", "14:30"]}
    out = cmd.update_agent(conn, email="sara@nile.example", changes={"working_hours": json.dumps(week)}, actor="test")
    assert out["working_hours"] == week


def test_an_agent_made_without_a_phone_is_warned_that_alerts_stay_in_the_inbox(conn):
    assert cmd.NO_PHONE in _create(conn)["warnings"]
    assert "warnings" not in cmd.create_agent(conn, org="nile", org_name="Nile", email="omar@nile.example",
                                              name="Omar", password=None, phone="201001234568")
