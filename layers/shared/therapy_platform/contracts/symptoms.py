"""The fixed list of presenting problems staff pick for a patient (1 to 6 per patient).

Codes are stable identifiers: they are stored, sent in events and used by the matching service
(therapist symptom preferences, progressive filtering), so a code is never renamed or reused.
Labels are the German wording staff and therapists see (e.g. in bundle emails), with an English
one for the API's code catalogue (`contracts/codes.py`); both may be reworded. Acute crises
(e.g. acute suicidality) are deliberately absent: they need immediate care, not a place on a
waiting list.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Final


class Symptom(StrEnum):
    DEPRESSION = "depression"
    ANXIETY = "anxiety"
    PANIC = "panic"
    SOCIAL_ANXIETY = "social_anxiety"
    PHOBIA = "phobia"
    HEALTH_ANXIETY = "health_anxiety"
    TRAUMA = "trauma"
    OCD = "ocd"
    EATING_DISORDER = "eating_disorder"
    BURNOUT = "burnout"
    STRESS = "stress"
    SLEEP = "sleep"
    ADDICTION = "addiction"
    PSYCHOSOMATIC = "psychosomatic"
    CHRONIC_PAIN = "chronic_pain"
    RELATIONSHIP = "relationship"
    FAMILY = "family"
    GRIEF = "grief"
    LIFE_CRISIS = "life_crisis"
    SELF_ESTEEM = "self_esteem"
    LONELINESS = "loneliness"
    WORKPLACE = "workplace"
    ADHD = "adhd"
    AUTISM = "autism"
    PERSONALITY = "personality"
    BIPOLAR = "bipolar"
    PSYCHOSIS = "psychosis"
    SELF_HARM = "self_harm"
    SEXUALITY = "sexuality"
    GENDER_IDENTITY = "gender_identity"


SYMPTOM_LABELS: Final[dict[Symptom, str]] = {
    Symptom.DEPRESSION: "Depression / Niedergeschlagenheit",
    Symptom.ANXIETY: "Ängste / Angststörung",
    Symptom.PANIC: "Panikattacken",
    Symptom.SOCIAL_ANXIETY: "Soziale Ängste",
    Symptom.PHOBIA: "Phobien (z. B. Höhen-, Flug- oder Tierangst)",
    Symptom.HEALTH_ANXIETY: "Krankheitsängste (Hypochondrie)",
    Symptom.TRAUMA: "Trauma / Posttraumatische Belastungsstörung (PTBS)",
    Symptom.OCD: "Zwänge (Zwangsgedanken, Zwangshandlungen)",
    Symptom.EATING_DISORDER: "Essstörung (Magersucht, Bulimie, Binge-Eating)",
    Symptom.BURNOUT: "Burnout / Erschöpfung",
    Symptom.STRESS: "Stress / Überforderung",
    Symptom.SLEEP: "Schlafstörungen",
    Symptom.ADDICTION: "Sucht / Abhängigkeit (Alkohol, Drogen, Medikamente, Glücksspiel)",
    Symptom.PSYCHOSOMATIC: "Psychosomatische Beschwerden",
    Symptom.CHRONIC_PAIN: "Chronische Schmerzen",
    Symptom.RELATIONSHIP: "Beziehungsprobleme / Partnerschaftskonflikte",
    Symptom.FAMILY: "Familiäre Konflikte",
    Symptom.GRIEF: "Trauer / Verlust",
    Symptom.LIFE_CRISIS: "Lebenskrise / Anpassungsprobleme",
    Symptom.SELF_ESTEEM: "Selbstwertprobleme",
    Symptom.LONELINESS: "Einsamkeit / soziale Isolation",
    Symptom.WORKPLACE: "Probleme am Arbeitsplatz / Mobbing",
    Symptom.ADHD: "ADHS / Aufmerksamkeitsprobleme",
    Symptom.AUTISM: "Autismus-Spektrum",
    Symptom.PERSONALITY: "Persönlichkeitsstörung (z. B. Borderline)",
    Symptom.BIPOLAR: "Bipolare Störung",
    Symptom.PSYCHOSIS: "Psychose / Schizophrenie",
    Symptom.SELF_HARM: "Selbstverletzendes Verhalten",
    Symptom.SEXUALITY: "Sexuelle Probleme",
    Symptom.GENDER_IDENTITY: "Geschlechtsidentität",
}

SYMPTOM_LABELS_EN: Final[dict[Symptom, str]] = {
    Symptom.DEPRESSION: "Depression / low mood",
    Symptom.ANXIETY: "Anxiety / anxiety disorder",
    Symptom.PANIC: "Panic attacks",
    Symptom.SOCIAL_ANXIETY: "Social anxiety",
    Symptom.PHOBIA: "Phobias (e.g. of heights, flying or animals)",
    Symptom.HEALTH_ANXIETY: "Health anxiety (hypochondria)",
    Symptom.TRAUMA: "Trauma / post-traumatic stress disorder (PTSD)",
    Symptom.OCD: "Obsessive-compulsive disorder (obsessions, compulsions)",
    Symptom.EATING_DISORDER: "Eating disorder (anorexia, bulimia, binge eating)",
    Symptom.BURNOUT: "Burnout / exhaustion",
    Symptom.STRESS: "Stress / feeling overwhelmed",
    Symptom.SLEEP: "Sleep disorders",
    Symptom.ADDICTION: "Addiction / dependence (alcohol, drugs, medication, gambling)",
    Symptom.PSYCHOSOMATIC: "Psychosomatic complaints",
    Symptom.CHRONIC_PAIN: "Chronic pain",
    Symptom.RELATIONSHIP: "Relationship problems / conflicts with a partner",
    Symptom.FAMILY: "Family conflicts",
    Symptom.GRIEF: "Grief / loss",
    Symptom.LIFE_CRISIS: "Life crisis / adjustment problems",
    Symptom.SELF_ESTEEM: "Low self-esteem",
    Symptom.LONELINESS: "Loneliness / social isolation",
    Symptom.WORKPLACE: "Problems at work / bullying",
    Symptom.ADHD: "ADHD / attention problems",
    Symptom.AUTISM: "Autism spectrum",
    Symptom.PERSONALITY: "Personality disorder (e.g. borderline)",
    Symptom.BIPOLAR: "Bipolar disorder",
    Symptom.PSYCHOSIS: "Psychosis / schizophrenia",
    Symptom.SELF_HARM: "Self-harm",
    Symptom.SEXUALITY: "Sexual problems",
    Symptom.GENDER_IDENTITY: "Gender identity",
}

MIN_SYMPTOMS: Final = 1
MAX_SYMPTOMS: Final = 6


def symptom_label(code: Symptom | str) -> str:
    """German label of a symptom code (raises ValueError for a code not on the list)."""
    return SYMPTOM_LABELS[Symptom(code)]
