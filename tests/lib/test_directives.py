import shutil

import pytest

from execution import validate_directives as cmd
from execution.lib.directive_schemas import SCHEMAS
from execution.lib.directives import DIRECTIVES_ROOT, DirectivesInvalid, DirectiveStore, load_directives

EXPECTED = {
    "incoming_message_router": "core", "ai_human_toggle_logic": "core", "message_sending_rules": "core",
    "viewing_rules": "core", "follow_up_rules": "core",
    "property_retrieval": "ai_behavior", "persona_enforcement": "ai_behavior", "escalation_triggers": "ai_behavior",
    "model_replies": "ai_behavior",
    "race_condition_handling": "edge_cases",
}


@pytest.fixture
def root(tmp_path):
    shutil.copytree(DIRECTIVES_ROOT, tmp_path / "directives")
    return tmp_path / "directives"


def _edit(root, directive_id, old, new):
    path = root / EXPECTED[directive_id] / f"{directive_id}.md"
    text = path.read_text(encoding="utf-8")
    assert old in text, old
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


def _problems(root):
    with pytest.raises(DirectivesInvalid) as info:
        load_directives(root)
    return [str(p) for p in info.value.problems]


def test_the_shipped_directives_are_valid_and_complete():
    snapshot = load_directives()
    assert set(snapshot.directives) == set(EXPECTED) == set(SCHEMAS)
    for directive_id, folder in EXPECTED.items():
        d = snapshot[directive_id]
        assert d.path == f"{folder}/{directive_id}.md" and d.version >= 1 and d.governs
        assert d.body.startswith("# ") and "## Rules" in d.body


def test_a_snapshot_cannot_be_changed():
    snapshot = load_directives()
    with pytest.raises(TypeError):
        snapshot["message_sending_rules"].values["burst_window_s"] = 0
    with pytest.raises((TypeError, AttributeError)):
        snapshot["escalation_triggers"]["rules"][0]["patterns"]["en"].append("x")


@pytest.mark.parametrize("directive_id, old, new, expected", [
    ("message_sending_rules", "burst_window_s: 1.5\n", "burst_window_s: 1.5\nburst_window_s: 2\n",
     "core/message_sending_rules.md: front matter: "),
    ("message_sending_rules", "burst_window_s: 1.5", "burst_window_s: fast",
     "core/message_sending_rules.md: burst_window_s: must be a number, got str"),
    ("message_sending_rules", "burst_window_s: 1.5", "burst_window_s: 60",
     "core/message_sending_rules.md: burst_window_s: must be between 0 and 6, got 60"),
    ("message_sending_rules", "arabic_digits: true", "arabic_digits: true\nemoji: lots",
     "core/message_sending_rules.md: emoji: unknown key"),
    ("message_sending_rules", "max_reply_chars: 1500\n", "",
     "core/message_sending_rules.md: max_reply_chars: is required"),
    ("message_sending_rules", "id: message_sending_rules", "id: sending_rules",
     "core/message_sending_rules.md: id: must equal the file name"),
    ("message_sending_rules", "version: 5", "version: one",
     "core/message_sending_rules.md: version: must be a whole number"),
    ("escalation_triggers", r"'\b(discount|", r"'\b((discount|",
     "ai_behavior/escalation_triggers.md: rules[0].patterns.en[0]: does not compile"),
    # a stray "|" made a pattern match every message (each one handed to the agent)
    ("escalation_triggers", r"'\b(discount|", r"'\b(|discount|",
     "ai_behavior/escalation_triggers.md: rules[0].patterns.en[0]: matches an empty text"),
    ("escalation_triggers", "(خصم|", "(خصم||",
     "ai_behavior/escalation_triggers.md: rules[0].patterns.ar[0]: matches an empty text"),
    ("escalation_triggers", "(خصم|", "(خَصم|",
     "ai_behavior/escalation_triggers.md: rules[0].patterns.ar[0]: contains"),
    ("escalation_triggers", "category: negotiation", "category: pricing",
     "ai_behavior/escalation_triggers.md: rules[0].category: must be one of"),
    ("persona_enforcement", "Here is what I found ({count}):", "Here is what I found ({cuont}):",
     "ai_behavior/persona_enforcement.md: templates.results_intro.en: unknown placeholder(s) ['cuont']"),
    ("persona_enforcement", '    arabizi: "El mizaneya fe 7odod kam?"\n', "",
     "ai_behavior/persona_enforcement.md: templates.ask_budget.arabizi: is required"),
    ("ai_human_toggle_logic", "---\nid:", "id:",
     "core/ai_human_toggle_logic.md: front matter: must start with YAML front matter"),
])
def test_a_bad_edit_is_reported_by_file_field_and_reason(root, directive_id, old, new, expected):
    _edit(root, directive_id, old, new)
    problems = _problems(root)
    assert any(p.startswith(expected) for p in problems), problems


def test_a_missing_directive_is_reported(root):
    (root / "edge_cases" / "race_condition_handling.md").unlink()
    assert _problems(root) == ["race_condition_handling.md: file: is missing"]


def test_edits_are_picked_up_and_a_broken_edit_is_refused(root):
    now = [0.0]
    store = DirectiveStore(root, reload_interval_s=2, clock=lambda: now[0])
    assert store.current()["message_sending_rules"]["burst_window_s"] == 1.5

    _edit(root, "message_sending_rules", "burst_window_s: 1.5", "burst_window_s: 2.5")
    assert store.current()["message_sending_rules"]["burst_window_s"] == 1.5   # not yet: checked every 2 s
    now[0] = 2.1
    assert store.current()["message_sending_rules"]["burst_window_s"] == 2.5
    assert store.errors == ()

    _edit(root, "message_sending_rules", "burst_window_s: 2.5", "burst_window_s: soon")
    now[0] = 4.2
    snapshot = store.current()
    assert snapshot["message_sending_rules"]["burst_window_s"] == 2.5          # the previous version stays
    assert store.errors and store.errors[0].startswith("core/message_sending_rules.md: burst_window_s:")

    _edit(root, "message_sending_rules", "burst_window_s: soon", "burst_window_s: 1")
    now[0] = 6.3
    assert store.current()["message_sending_rules"]["burst_window_s"] == 1
    assert store.errors == ()


def test_a_broken_set_stops_start_up(root):
    _edit(root, "property_retrieval", "max_results: 3", "max_results: 0")
    with pytest.raises(DirectivesInvalid, match="property_retrieval.md: max_results: must be between 1 and 10"):
        DirectiveStore(root)


def test_cli_exits_1_naming_file_field_and_reason(root, capsys):
    assert cmd.main(["--root", str(root)]) == 0
    assert capsys.readouterr().out.count('"valid": true') == 1
    _edit(root, "race_condition_handling", "conversation_lock_ttl_s: 15", "conversation_lock_ttl_s: 1")
    assert cmd.main(["--root", str(root)]) == 1
    err = capsys.readouterr().err
    assert "edge_cases/race_condition_handling.md: conversation_lock_ttl_s: must be between 5 and 300, got 1" in err
