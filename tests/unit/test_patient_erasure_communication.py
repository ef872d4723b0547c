"""`patient.deleted` in the communication service (use_cases/events.py, domain/patient_erasure.py) with
in-memory fakes: queued emails are cancelled before the sender gets them, the patient's
emails are blanked, stored reply mails that name the patient are deleted; once per event."""

from __future__ import annotations

import dataclasses
import uuid
from datetime import UTC, datetime

from communication_fakes import FakeTransport
from communication_state_fakes import deliver, envelope, patient_payload, state_world
from therapy_platform.communication.adapters.patient_erasure import InMemoryStoredMail
from therapy_platform.communication.domain.emails import DeliveryPolicy, EmailStatus
from therapy_platform.communication.domain.patient_erasure import (
    HeldValues,
    mail_mentions,
    patient_terms,
    search_ids_of,
)
from therapy_platform.communication.use_cases.emails import SenderContext, SendResult, send_email
from therapy_platform.contracts.erasure import scrub_text

NOW = datetime(2026, 11, 23, 6, 5, tzinfo=UTC)

QP_REPLY = (
    b"From: jana@example.org\r\nTo: b1042@replies.example.org\r\nSubject: Termin\r\n"
    b"Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n"
    b"Viele Gr=C3=BC=C3=9Fe, Jana Schr=C3=B6der\r\n"
)
OTHER_REPLY = b"From: praxis@example.org\r\nSubject: Re: B1042\r\n\r\nKein Platz frei.\r\n"


def test_terms_come_from_the_emails_and_the_contact_the_service_holds() -> None:
    terms = patient_terms(
        HeldValues(
            addresses=("jana@example.org",),
            names=("Jana Schröder",),
            contact={
                "first_name": "Jana",
                "last_name": "Schröder",
                "phone": "+49 30 9876543",
                "city": "Berlin",
            },
        )
    )
    assert {"jana@example.org", "Jana Schröder", "Schröder", "Schröder, Jana"} <= terms.texts
    assert "Berlin" not in terms.texts  # a city names many people
    assert terms.phones == {"309876543"}


def test_the_patients_searches_come_from_their_emails_keys_and_their_references_are_terms() -> None:
    search = uuid.uuid4()
    keys = [f"search-started:{search}", f"place-found:{search}:{uuid.uuid4()}", "bundle-inquiry:x", None]
    assert search_ids_of(keys) == (search,)
    terms = patient_terms(HeldValues(search_ids=(search,), member_references=("B1042-3",)))
    assert scrub_text("Für B1042-3 ist ein Platz frei, B1042-4 nicht.", terms) == (
        "Für [gelöscht] ist ein Platz frei, B1042-4 nicht."
    )


def test_a_quoted_printable_mail_is_read_decoded() -> None:
    terms = patient_terms(HeldValues(names=("Jana Schröder",)))
    assert "Schröder".encode() not in QP_REPLY
    assert mail_mentions(QP_REPLY, terms)
    assert not mail_mentions(OTHER_REPLY, terms)


def test_erasure_cancels_queued_emails_blanks_them_and_deletes_stored_mails_once() -> None:
    w = state_world(now=NOW)
    stored = InMemoryStoredMail({"processed/a": QP_REPLY, "processed/b": OTHER_REPLY})
    context = dataclasses.replace(w.context, stored_mail=stored)
    patient_id = uuid.uuid4()
    deliver(
        context, envelope("patient.created", patient_payload(patient_id, email="jana@example.org"), at=NOW)
    )
    w.database.emails.clear()
    search = {
        "id": str(uuid.uuid4()),
        "patient_id": str(patient_id),
        "status": "active",
        "created_at": NOW.isoformat(),
        "updated_at": NOW.isoformat(),
        "total_requested_contacts": 10,
    }
    deliver(context, envelope("search.created", search, at=NOW))
    [queued] = w.database.emails.values()
    assert queued.status is EmailStatus.QUEUED and queued.recipient == "jana@example.org"

    erased = envelope("patient.deleted", {"id": str(patient_id), "erased_at": NOW.isoformat()}, at=NOW)
    deliver(context, erased)
    [cancelled] = w.database.emails.values()
    assert cancelled.status is EmailStatus.FAILED and cancelled.last_error is not None
    assert "erased" in cancelled.last_error and cancelled.claim_token is None
    assert cancelled.recipient == "geloescht@invalid" and cancelled.text == "" and cancelled.html == ""
    assert sorted(stored.messages) == ["processed/b"]

    # The sender, offered the message that was queued, never sends it.
    sender = SenderContext(
        unit_of_work=context.unit_of_work,
        transport=(transport := FakeTransport()),
        queue=w.queue,
        renderer=context.renderer,
        addressing=context.addressing,
        policy=DeliveryPolicy(),
        clock=w.clock,
    )
    assert queued.id in w.queue.messages
    assert send_email(sender, queued.id).value.result is SendResult.ALREADY_DONE
    assert transport.delivered == []

    stored.messages["processed/c"] = QP_REPLY  # would be deleted by a second erasure run ...
    deliver(context, erased)  # ... but a redelivered event changes nothing
    assert sorted(stored.messages) == ["processed/b", "processed/c"]
