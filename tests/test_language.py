"""Each message is read as Arabic, English or Arabizi: by script, then by Arabizi's digit-letters
(2 3 5 7) and words that are Egyptian Arabic in Latin letters; short messages included."""

import pytest

from execution.lib.criteria import detect_language

CASES = {
    "ar": ["عايز شقة في التجمع", "تمام شكراً", "بكام؟", "ممكن اشوفها بكرة", "السلام عليكم",
           "شقة NH-0001 لسه متاحة؟", "ابعتلي اللوكيشن 📍", "٣ غرف في حدود ٧ مليون"],
    "arabizi": ["3ayez sha2a fel tagamo3", "tamam shokran", "ahlan", "ezayak", "aywa keda", "bkam?",
                "momken asoufha bokra", "feen el location", "Mesh fahem", "enta bot?", "a5er se3r kam",
                "tayeb w el mo2adam?", "hena fel maadi", "law sama7t", "mashy yalla"],
    "en": ["ok", "thanks", "hello", "yes please", "Can I see it tomorrow?", "is it still available?",
           "The law firm is on 3rd street", "3 bedroom flat in New Cairo under 8M", "I want to see the apartment",
           "what's the price of NH-0001?", "150 sqm 2br", "ok thanks 👍"],
}


@pytest.mark.parametrize("language, text", [(lang, t) for lang, texts in CASES.items() for t in texts])
def test_language_is_detected(language, text):
    assert detect_language(text) == language
