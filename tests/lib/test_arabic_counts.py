"""Arabic counted nouns agree with their number."""

import pytest

from execution.lib.arabic_counts import agree, counted


@pytest.mark.parametrize("number, noun, said", [
    ("١", "غرف", "غرفة واحدة"), ("2", "غرف", "غرفتين"), ("٣", "غرف", "٣ غرف"), ("10", "غرف", "10 غرف"),
    ("١١", "غرف", "١١ غرفة"), ("25", "غرف", "25 غرفة"),
    ("1", "حمام", "حمام واحد"), ("٢", "حمام", "حمامين"), ("٤", "حمام", "٤ حمامات"), ("١٢", "حمام", "١٢ حمام"),
    ("1", "سنين", "سنة واحدة"), ("2", "سنين", "سنتين"), ("8", "سنين", "8 سنين"), ("١٥", "سنين", "١٥ سنة"),
])
def test_counted(number, noun, said):
    assert counted(number, noun) == said


def test_agree_rewrites_what_the_cards_write_and_nothing_else():
    card = "شقة ٢ غرف للبيع\n📐 ١٢٥ م² · ٢ غرف · ١ حمام\n🗓 مقدم ١٠٪ والباقي على ٨ سنين"
    assert agree(card) == "شقة غرفتين للبيع\n📐 ١٢٥ م² · غرفتين · حمام واحد\n🗓 مقدم ١٠٪ والباقي على ٨ سنين"
    assert agree("١٢٬٥٠٠ غرف") == "١٢٬٥٠٠ غرف"           # part of a larger number: left alone
    assert agree("٢ غرفه") == "٢ غرفه" and agree("2 غرفتين") == "2 غرفتين"
