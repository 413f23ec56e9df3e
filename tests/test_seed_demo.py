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
        cur.execute("SELECT count(*) AS n FROM agents")
        assert cur.fetchone()["n"] == 1
        cur.execute("SELECT password_hash FROM agents WHERE id = %s", (first["agent_id"],))
        stored = cur.fetchone()["password_hash"]
        cur.execute("SELECT provider, agent_id FROM channels WHERE id = %s", (first["channel_id"],))
        assert cur.fetchone() == {"provider": "sandbox", "agent_id": first["agent_id"]}
    assert stored != first["login_password"]
    assert verify_password(first["login_password"], stored)
    assert not verify_password("wrong", stored)
