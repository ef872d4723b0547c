"""A therapist's objection in a reply (GDPR Art. 21): the pure detector (communication/domain/
opt_out.py), examples and properties, and reply intake publishing `email.opt_out_received`
(ids only) once per stored, trustworthy reply."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st
from test_email_rendering import _inquiry, _patient

from communication_fakes import ADDRESSING, LEGAL
from communication_state_fakes import (
    FakeInbox,
    StateWorld,
    bundle_sent_payload,
    deliver,
    envelope,
    state_world,
)
from therapy_platform.communication.domain.email_content import Person
from therapy_platform.communication.domain.opt_out import html_own_words, objects_to_inquiries, own_words
from therapy_platform.communication.domain.replies import reply_message
from therapy_platform.communication.rendering.renderer import EmailRenderer
from therapy_platform.communication.use_cases.replies import take_in_replies
from therapy_platform.contracts.catalog import EVENT_PAYLOADS

NOW = datetime(2026, 12, 5, 9, 30, tzinfo=UTC)
DOMAIN = ADDRESSING.reply_domain

OBJECTIONS = [
    "keine weiteren Anfragen",
    "Bitte KEINE WEITEREN ANFRAGEN!",
    "Bitte keine Anfragen mehr.",
    "Bitte schicken Sie mir keine neuen Anfragen",
    "keine E-Mails mehr bitte",
    "Bitte tragen Sie mich aus Ihrem Verteiler aus.",
    "Bitte austragen",
    "Ich möchte mich abmelden.",
    "Bitte nicht mehr kontaktieren",
    "Ich widerspreche der Nutzung meiner Daten.",
    "Widerspruch gegen weitere Kontaktaufnahme",
    "keine\nweiteren\n  Anfragen",  # a client that wraps lines
    "Keine weiteren Anfragen \u2013 danke",
    "unsubscribe",
    "No further requests please",
]
ANSWERS = [
    "B1042-1: ja",
    "B1042-1: nein \u2013 keine Kapazität, B1042-2: ja",
    "Wir haben derzeit leider keine freien Plätze.",
    "Bitte rufen Sie mich an, ich habe Fragen zu B1042-2.",
    "Keine Kapazität bis März, danach gern wieder.",
    "Vielen Dank für die Anfrage! Ich melde mich nächste Woche.",
    "",
]
# The inquiry itself tells the therapist how to object; replies quote it.
QUOTED_INQUIRY = (
    "> Sie möchten keine Anfragen mehr von uns erhalten? Dann antworten Sie einfach mit\n"
    "> „keine weiteren Anfragen“. Wir schreiben Ihnen dann nicht mehr.\n"
)


@pytest.mark.parametrize("text", OBJECTIONS)
def test_an_objection_is_recognised_however_it_is_worded(text: str) -> None:
    assert objects_to_inquiries(text)


@pytest.mark.parametrize("text", ANSWERS)
def test_an_ordinary_answer_is_no_objection(text: str) -> None:
    assert not objects_to_inquiries(text)


@pytest.mark.parametrize(
    "separator",
    [
        "Am 05.12.2026 um 09:00 schrieb Vermittlung <vermittlung@example.org>:",
        "-----Ursprüngliche Nachricht-----",
        "-----Original Message-----",
        "Von: Vermittlung <vermittlung@example.org>",
        "On Sat, Dec 5, 2026 at 9:00 AM Vermittlung <vermittlung@example.org> wrote:",
    ],
)
def test_the_quoted_inquiry_is_not_the_therapists_words(separator: str) -> None:
    unquoted = QUOTED_INQUIRY.replace("> ", "")
    assert not objects_to_inquiries(f"B1042-1: ja\n\n{separator}\n{unquoted}")
    assert objects_to_inquiries(f"Keine weiteren Anfragen bitte.\n\n{separator}\n{unquoted}")


def test_quoted_lines_do_not_count_but_the_own_words_do() -> None:
    assert not objects_to_inquiries(f"B1042-1: nein\n{QUOTED_INQUIRY}")
    assert objects_to_inquiries(f"{QUOTED_INQUIRY}\nBitte austragen.")  # bottom-posting
    assert own_words(f"a\n{QUOTED_INQUIRY}b") == "a\nb"


def test_an_html_only_reply_is_read_without_its_blockquote() -> None:
    quoted = f"<blockquote>{QUOTED_INQUIRY}</blockquote>"
    assert not objects_to_inquiries(None, f"<p>B1042-1: ja</p>{quoted}")
    assert objects_to_inquiries(None, f"<p>Bitte <b>keine weiteren</b> Anfragen</p>{quoted}")
    assert objects_to_inquiries("", "<div>austragen</div>")
    assert "keine" not in html_own_words(quoted)
    assert not objects_to_inquiries(None, None)


def test_the_inquiry_we_send_contains_the_phrase_and_its_quote_is_no_objection() -> None:
    """The phrase we tell therapists to use is recognised, and our own email quoted back (as
    every mail client does) is not mistaken for an objection."""

    rendered = EmailRenderer(LEGAL).render(_inquiry(Person(last_name="Müller"), _patient()))
    assert "„keine weiteren Anfragen“" in rendered.text.replace("\n", " ")
    assert objects_to_inquiries("keine weiteren Anfragen")
    quoted = "\n".join(f"> {line}" for line in rendered.text.splitlines())
    assert not objects_to_inquiries(f"B12-1: ja\n\n{quoted}")
    assert not objects_to_inquiries(None, f"<p>B12-1: ja</p><blockquote>{rendered.html}</blockquote>")


_filler = st.sampled_from(ANSWERS)
_objection = st.sampled_from(OBJECTIONS)


@given(before=_filler, phrase=_objection, after=_filler)
def test_an_objection_anywhere_in_the_own_words_counts(before: str, phrase: str, after: str) -> None:
    assert objects_to_inquiries(f"{before}\n{phrase}\n{after}")


@given(answer=_filler, phrase=_objection)
def test_an_objection_only_in_quoted_lines_never_counts(answer: str, phrase: str) -> None:
    quoted = "\n".join(f"> {line}" for line in phrase.splitlines())
    assert not objects_to_inquiries(f"{answer}\n{quoted}")


@given(phrase=_objection, upper=st.booleans(), spaces=st.integers(1, 3))
def test_case_and_spacing_do_not_matter(phrase: str, upper: bool, spaces: int) -> None:
    varied = (phrase.upper() if upper else phrase.lower()).replace(" ", " " * spaces)
    assert objects_to_inquiries(varied) == objects_to_inquiries(phrase)


@given(st.text(max_size=400), st.none() | st.text(max_size=400))
def test_any_text_gets_a_verdict(text: str, html: str | None) -> None:
    assert objects_to_inquiries(text, html) in (True, False)


# ------------------------------------------------------------------------------ reply intake


def _inquiry_world(therapist_id: uuid.UUID) -> tuple[StateWorld, str]:
    w = state_world(now=NOW)
    payload = bundle_sent_payload(number=1042, sent_at=NOW, therapist_id=therapist_id)
    [email_id] = deliver(w.context, envelope("bundle.sent", payload, at=NOW)).emails
    return w, w.database.emails[email_id].message_id


def _opt_outs(w: StateWorld) -> list[dict[str, object]]:
    return [event.payload for _, event in w.database.events if event.event_type == "email.opt_out_received"]


def test_a_trustworthy_objection_publishes_the_therapist_id_only_once() -> None:
    therapist_id = uuid.uuid4()
    w, message_id = _inquiry_world(therapist_id)
    reply = reply_message(
        to=f"antwort+B1042@{DOMAIN}",
        sender="praxis@example.org",
        subject="AW: Anfrage",
        text=f"Bitte keine weiteren Anfragen, wir sind voll.\n\n{QUOTED_INQUIRY}",
        in_reply_to=message_id,
        message_id="<r1@praxis.example.org>",
    )
    inbox = FakeInbox()
    inbox.deliver("1", reply.as_bytes(), NOW)
    inbox.deliver("2", reply.as_bytes(), NOW)  # delivered twice: stored once, published once
    report = take_in_replies(w.context.unit_of_work, inbox, ADDRESSING, now=NOW)
    assert (report.stored, report.duplicates, report.opt_outs) == (1, 1, 1)
    [payload] = _opt_outs(w)
    parsed = EVENT_PAYLOADS["email.opt_out_received"].model_validate(payload)
    assert payload == {"therapist_id": str(therapist_id)}  # the id only: no text, no address
    assert parsed.model_dump() == {"therapist_id": therapist_id}
    assert "voll" not in str(payload) and "praxis@" not in str(payload)


def test_an_ordinary_answer_or_a_forged_objection_publishes_nothing() -> None:
    w, message_id = _inquiry_world(uuid.uuid4())
    inbox = FakeInbox()
    answer = reply_message(
        to=f"antwort+B1042@{DOMAIN}",
        sender="praxis@example.org",
        subject="AW: Anfrage",
        text=f"B1042-1: ja\n{QUOTED_INQUIRY}",
        in_reply_to=message_id,
        message_id="<r2@praxis.example.org>",
    )
    forged = reply_message(
        to=f"antwort+B1042@{DOMAIN}",
        sender="mallory@evil.example",
        subject="AW: Anfrage",
        text="keine weiteren Anfragen",
        in_reply_to=message_id,
        message_id="<forged@evil.example>",
    )
    inbox.deliver("answer", answer.as_bytes(), NOW)
    inbox.deliver("forged", forged.as_bytes(), NOW)
    report = take_in_replies(w.context.unit_of_work, inbox, ADDRESSING, now=NOW)
    assert (report.stored, report.reviewed, report.opt_outs) == (1, 1, 0)
    assert _opt_outs(w) == []  # the forged one is for staff, on the review list
