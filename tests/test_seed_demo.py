import json

from execution import seed_demo as seed_cmd
from execution.lib.security import verify_password


def test_seed_is_idempotent_and_prints_the_login(resources, capsys):
    assert seed_cmd.main([], resources=resources) == 0
    first = json.loads(capsys.readouterr().out)
    assert seed_cmd.main([], resources=resources) == 0
    second = json.loads(capsys.readouterr().out)
    assert first == second
    assert first["login_email"] == "sara@nile-homes.example"
    assert first["login_password"] == resources.settings.demo_agent_password
    with resources.db.connection() as conn, conn.cursor() as cur:
        cur.execute("SELECT email FROM agents ORDER BY id")
        assert [r["email"] for r in cur] == ["sara@nile-homes.example", "omar@delta-realty.example"]
        sara = first["agents"][0]
        cur.execute("SELECT password_hash FROM agents WHERE id = %s", (sara["agent_id"],))
        stored = cur.fetchone()["password_hash"]
        for agent in first["agents"]:
            cur.execute("SELECT provider, agent_id FROM channels WHERE id = %s", (agent["channel_id"],))
            assert cur.fetchone() == {"provider": "sandbox", "agent_id": agent["agent_id"]}
        # Each demo agent has their own listings, and only theirs.
        cur.execute("SELECT a.email, count(*) AS n, bool_and(p.organization_id = a.organization_id) AS own "
                    "FROM properties p JOIN agents a ON a.id = p.agent_id GROUP BY a.email ORDER BY a.email")
        assert [tuple(r.values()) for r in cur] == [("omar@delta-realty.example", 25, True),
                                                    ("sara@nile-homes.example", 60, True)]
        assert [a["listings"] for a in first["agents"]] == [60, 25]
    assert stored != first["login_password"]
    assert verify_password(first["login_password"], stored)
    assert not verify_password("wrong", stored)


def test_a_changed_demo_email_still_gets_the_demo_listings(resources):
    from execution.seed_demo import seed_demo

    with resources.db.connection() as conn:
        seed = seed_demo(conn, email="me@my-agency.example", password="pw-long-enough", secret_key="k" * 32)
        assert seed.login_email == "me@my-agency.example"
        with conn.cursor() as cur:
            cur.execute("SELECT count(*) AS n FROM properties WHERE agent_id = %s", (seed.agents[0].agent_id,))
            assert cur.fetchone()["n"] == 60
