"""Sample data in the shape of the 116117 directory (Arztsuche), made up here, for the local
directory server, the tests, the demo and the benchmarks.

    python -m localcloud.directory_data --entries 2000 --prefixes 52,10 --out .state/directory.json

A dataset is `{"entries": [{"at": [lat, lon], "entry": <the directory's entry>}], "websites":
{<entry id>: {"home": html, "kontakt": html}}}`; `at` places even a malformed entry in the
search results. Entries are deterministic per seed and placed on the real postcode geography
(the layer's postcode table). With `bad=True` about one entry in 25 is something an import
must cope with: not an object, missing names, a postcode with letters, a phone window such as
25:00-26:00, children-only offers, the same id twice with different data; many entries lack
fields (no phone, no email, no website, no calendar), and some have only a website whose pages
state the email and the phone hours. Websites live on the directory server itself
(`{base}/praxis/<id>/`); the server fills in its own address for `{base}`.
"""

from __future__ import annotations

import argparse
import csv
import json
import random
import sys
from collections.abc import Iterator, Sequence
from datetime import date, timedelta
from pathlib import Path
from typing import Any, Final

from localcloud.paths import PROJECT_ROOT

LAYER_PACKAGE: Final = PROJECT_ROOT / "layers" / "shared" / "therapy_platform"
POSTCODE_TABLE: Final = LAYER_PACKAGE / "platform" / "geography" / "data" / "plz_geocoord.csv"
BASE_PLACEHOLDER: Final = "{base}"
PAGE_SIZE: Final = 50

FIRST_F: Final = [
    "Änne",
    "Jülide",
    "Özlem",
    "Sabine",
    "Ursula",
    "Birgit",
    "Franziska",
    "Zoë",
    "Lena",
    "Maja",
    "Renée",
    "Gül",
    "Katharina",
    "Hannah",
    "Jördis",
    "Käthe",
    "Marlène",
    "Anna",
    "Sophie",
    "Julia",
]
FIRST_M: Final = [
    "Jürgen",
    "Jörg",
    "Björn",
    "Søren",
    "Ömer",
    "René",
    "Lukas",
    "Jonas",
    "Felix",
    "Mehmet",
    "Thomas",
    "Stefan",
    "Andreas",
    "Michael",
    "Karl",
    "Günther",
    "Bernd",
    "Matthias",
    "Uwe",
    "Noah",
]
LAST: Final = [
    "Müller",
    "Schäfer",
    "Weiß",
    "Groß",
    "Schröder",
    "Krüger",
    "Böhm",
    "Kühn",
    "Jäger",
    "Förster",
    "Möller",
    "Köhler",
    "Öztürk",
    "Yılmaz",  # noqa: RUF001 - a Turkish name, not a typo
    "Schmidt",
    "Meyer",
    "Wagner",
    "Becker",
    "Hoffmann",
    "Koch",
    "Richter",
    "Klein",
    "Wolf",
    "Neumann",
    "Schwarz",
    "Zimmermann",
    "Braun",
    "Hartmann",
    "Lange",
    "Schmitt",
    "Werner",
    "Krause",
    "Lehmann",
    "Fuchs",
    "Vogel",
    "Nowak",
    "Kowalski",
    "Dąbrowski",
    "Süß",
    "Hölderlin",
]
STREETS: Final = [
    "Hauptstraße",
    "Schulstraße",
    "Gartenstraße",
    "Bahnhofstraße",
    "Lindenstraße",
    "Kirchstraße",
    "Weißdornweg",
    "Am Mühlbach",
    "Goethestraße",
    "Schillerstraße",
    "Königsallee",
    "Pontstraße",
    "Theaterstraße",
    "Friedrich-Ebert-Straße",
    "Große Präsidentenstraße",
    "Jülicher Straße",
]
TITLES: Final = [None, None, None, "Dr.", "Dr. phil.", "Dipl.-Psych.", "Prof. Dr.", "Dr. rer. nat."]
OFFERS: Final = [
    "Verhaltenstherapie",
    "Tiefenpsychologisch fundierte Psychotherapie",
    "Analytische Psychotherapie",
    "Systemische Therapie",
]
EXTRA_OFFERS: Final = ["Neuropsychologische Therapie", "EMDR"]
LANGUAGES: Final = [
    "Englisch",
    "Türkisch",
    "Russisch",
    "Arabisch",
    "Polnisch",
    "Französisch",
    "Spanisch",
    "Italienisch",
    "Persisch",
    "Kurdisch",
    "Griechisch",
    "Gebärdensprache",
]
CITIES: Final = {
    "01": "Dresden",
    "02": "Görlitz",
    "03": "Cottbus",
    "04": "Leipzig",
    "06": "Halle (Saale)",
    "07": "Jena",
    "08": "Zwickau",
    "09": "Chemnitz",
    "10": "Berlin",
    "12": "Berlin",
    "13": "Berlin",
    "14": "Potsdam",
    "15": "Frankfurt (Oder)",
    "17": "Greifswald",
    "18": "Rostock",
    "19": "Schwerin",
    "20": "Hamburg",
    "21": "Hamburg",
    "22": "Hamburg",
    "23": "Lübeck",
    "24": "Kiel",
    "26": "Oldenburg",
    "27": "Bremerhaven",
    "28": "Bremen",
    "29": "Celle",
    "30": "Hannover",
    "31": "Hildesheim",
    "33": "Bielefeld",
    "34": "Kassel",
    "35": "Gießen",
    "36": "Fulda",
    "37": "Göttingen",
    "38": "Braunschweig",
    "39": "Magdeburg",
    "40": "Düsseldorf",
    "41": "Mönchengladbach",
    "42": "Wuppertal",
    "44": "Dortmund",
    "45": "Essen",
    "47": "Duisburg",
    "48": "Münster",
    "49": "Osnabrück",
    "50": "Köln",
    "51": "Köln",
    "52": "Aachen",
    "53": "Bonn",
    "54": "Trier",
    "55": "Mainz",
    "56": "Koblenz",
    "57": "Siegen",
    "58": "Hagen",
    "59": "Hamm",
    "60": "Frankfurt am Main",
    "63": "Offenbach am Main",
    "64": "Darmstadt",
    "65": "Wiesbaden",
    "66": "Saarbrücken",
    "67": "Ludwigshafen am Rhein",
    "68": "Mannheim",
    "69": "Heidelberg",
    "70": "Stuttgart",
    "72": "Tübingen",
    "74": "Heilbronn",
    "76": "Karlsruhe",
    "78": "Konstanz",
    "79": "Freiburg im Breisgau",
    "80": "München",
    "81": "München",
    "83": "Rosenheim",
    "84": "Landshut",
    "85": "Ingolstadt",
    "86": "Augsburg",
    "89": "Ulm",
    "90": "Nürnberg",
    "91": "Erlangen",
    "93": "Regensburg",
    "94": "Passau",
    "95": "Bayreuth",
    "96": "Bamberg",
    "97": "Würzburg",
    "99": "Erfurt",
}
WEEKDAYS: Final = ["Montag", "Dienstag", "Mittwoch", "Donnerstag", "Freitag"]
SHORT_DAYS: Final = ["Mo", "Di", "Mi", "Do", "Fr"]


def postcode_table() -> list[tuple[str, float, float]]:
    with POSTCODE_TABLE.open(encoding="utf-8") as handle:
        reader = csv.reader(handle)
        next(reader)
        rows = [(code, float(lat), float(lon)) for code, lat, lon in reader]
    # The table marks postcodes it could not locate with the centre of Germany: not usable here.
    return [row for row in rows if (row[1], row[2]) != (51.165691, 10.451526)]


class DirectoryDataGenerator:
    def __init__(
        self, seed: int = 116117, *, prefixes: Sequence[str] | None = None, today: date | None = None
    ):
        self.random = random.Random(seed)
        table = postcode_table()
        if prefixes:
            table = [row for row in table if row[0][:2] in set(prefixes)]
        if not table:
            raise ValueError(f"no postcodes start with {', '.join(prefixes or [])}")
        self.postcodes = table
        self.monday = (today or date(2026, 11, 23)) - timedelta(days=(today or date(2026, 11, 23)).weekday())

    def _id(self) -> str:
        return f"{self.random.getrandbits(40):010x}"

    def _calendar(self, *, broken: bool = False) -> list[dict[str, Any]]:
        """Two weeks of dated days, phone windows on some weekdays, consultation hours too."""
        days: list[dict[str, Any]] = []
        phone_days = self.random.sample(range(5), self.random.randint(1, 4))
        start = self.random.choice([8, 9, 12, 13])
        for week in range(2):
            for index in range(5):
                blocks: list[dict[str, Any]] = [
                    {"typ": "Sprechzeiten", "zeiten": ["09:00-12:00", "14:00-18:00"]}
                ]
                if index in phone_days:
                    window = f"{start:02d}:00-{start:02d}:50"
                    if broken and week == 0:
                        window = "25:00-26:00"
                    blocks.append({"typ": "Telefonische Erreichbarkeit", "zeiten": [window]})
                day = self.monday + timedelta(days=7 * week + index)
                days.append({"datum": day.strftime("%d.%m.%Y"), "tag": WEEKDAYS[index], "typen": blocks})
        return days

    def _website(self, entry: dict[str, Any], phone_days: list[int], hour: int) -> dict[str, str]:
        name = f"{entry.get('titel') or ''} {entry['vorname']} {entry['name']}".strip()
        slug = entry["id"]
        days = ", ".join(SHORT_DAYS[index] for index in sorted(phone_days))
        email = f"praxis.{slug}@praxis-beispiel.de"
        home = (
            "<!doctype html><html lang='de'><head><meta charset='utf-8'>"
            f"<title>Praxis {name}</title><style>p {{ color: #333 }}</style></head><body>"
            f"<h1>Psychotherapeutische Praxis {name}</h1>"
            "<p>Herzlich willkommen. Ich biete Psychotherapie für Erwachsene an.</p>"
            "<nav><a href='kontakt'>Kontakt &amp; Sprechzeiten</a> | <a href='/intern/'>Intern</a></nav>"
            "<script>var mail='spam@tracker.example';</script>"
            "</body></html>"
        )
        contact = (
            "<!doctype html><html lang='de'><head><meta charset='utf-8'><title>Kontakt</title></head><body>"
            f"<h1>Kontakt</h1><p>{entry.get('strasse', '')} {entry.get('hausnummer', '')}, "
            f"{entry.get('plz', '')} {entry.get('ort', '')}</p>"
            f"<p>E-Mail: <a href='mailto:{email}'>{email.replace('@', ' (at) ')}</a></p>"
            f"<h2>Telefonische Sprechzeiten</h2><p>{days} {hour}:00 - {hour}:50 Uhr</p>"
            "<h2>Sprechzeiten</h2><p>Mo-Fr 9-18 Uhr nach Vereinbarung</p>"
            "</body></html>"
        )
        return {"home": home, "kontakt": contact}

    def entry(self) -> tuple[list[float], dict[str, Any], dict[str, str] | None]:
        postcode, lat, lon = self.random.choice(self.postcodes)
        female = self.random.random() < 0.7
        first = self.random.choice(FIRST_F if female else FIRST_M)
        entry: dict[str, Any] = {
            "id": self._id(),
            "anrede": "Frau" if female else "Herr",
            "titel": self.random.choice(TITLES),
            "vorname": first,
            "name": self.random.choice(LAST),
            "geschlecht": "W" if female else "M",
            "strasse": self.random.choice(STREETS),
            "hausnummer": str(self.random.randint(1, 120)),
            "plz": postcode,
            "ort": CITIES.get(postcode[:2], "Musterstadt"),
            "lat": round(lat + self.random.uniform(-0.02, 0.02), 6),
            "lon": round(lon + self.random.uniform(-0.03, 0.03), 6),
            "tel": f"0{self.random.randint(200, 9999)} {self.random.randint(10000, 9999999)}",
            "handy": "",
            "fax": "",
            "email": "",
            "web": "",
            "psy": [],
            "fs": self.random.sample(LANGUAGES, self.random.choice([0, 0, 0, 1, 1, 2])),
            "tsz": [],
            "keineSprechzeiten": False,
        }
        offers = self.random.sample(OFFERS, self.random.choice([1, 1, 2]))
        groups = ["Erwachsene"] if self.random.random() < 0.8 else ["Erwachsene", "Kinder und Jugendliche"]
        entry["psy"] = [{"verfahren": offer, "altersgruppen": groups} for offer in offers]
        if self.random.random() < 0.05:
            entry["psy"].append(
                {"verfahren": self.random.choice(EXTRA_OFFERS), "altersgruppen": ["Erwachsene"]}
            )
        if self.random.random() < 0.3:
            entry["fax"] = f"{entry['tel'][:-1]}9"
        website: dict[str, str] | None = None
        kind = self.random.random()
        if kind < 0.45:
            local = (
                entry["name"].lower().translate(str.maketrans({"ä": "ae", "ö": "oe", "ü": "ue", "ß": "ss"}))
            )
            entry["email"] = f"praxis.{local}.{entry['id'][:4]}@example.org"
            entry["tsz"] = self._calendar()
        elif kind < 0.65:
            phone_days = self.random.sample(range(5), self.random.randint(1, 3))
            hour = self.random.choice([8, 12, 13])
            entry["web"] = f"{BASE_PLACEHOLDER}/praxis/{entry['id']}/"
            website = self._website(entry, phone_days, hour)
        elif kind < 0.8:
            entry["keineSprechzeiten"] = True
        else:
            entry["tsz"] = self._calendar()
        if self.random.random() < 0.15:
            entry["tel"] = ""  # the directory often lacks fields
        if self.random.random() < 0.05:
            entry["handy"] = f"0171 {self.random.randint(1000000, 9999999)}"
        if self.random.random() < 0.1:
            del entry["titel"]
        return [entry["lat"], entry["lon"]], entry, website

    def _bad(self, number: int) -> tuple[list[float], Any]:
        at, entry, _ = self.entry()
        kind = number % 5
        if kind == 0:
            return at, "kaputter Eintrag"
        if kind == 1:
            del entry["name"]
        elif kind == 2:
            entry["plz"] = entry["plz"][:4] + "A"
        elif kind == 3:
            entry["tsz"] = self._calendar(broken=True)
        else:
            entry["psy"] = [{"verfahren": "Verhaltenstherapie", "altersgruppen": ["Kinder und Jugendliche"]}]
        return at, entry

    def dataset(self, entries: int, *, bad: bool = True) -> dict[str, Any]:
        items: list[dict[str, Any]] = []
        websites: dict[str, dict[str, str]] = {}
        bad_every = 25 if bad else 0
        for number in range(entries):
            if bad_every and number % bad_every == bad_every - 1:
                at, raw = self._bad(number // bad_every)
                items.append({"at": at, "entry": raw})
                continue
            at, entry, website = self.entry()
            items.append({"at": at, "entry": entry})
            if website is not None:
                websites[entry["id"]] = website
        if bad and len(items) > 10:
            # The same id again with different data (a directory glitch), next to the first.
            original = next(
                item for item in items if isinstance(item["entry"], dict) and "name" in item["entry"]
            )
            twin = json.loads(json.dumps(original))
            twin["entry"]["tel"] = "0000 000000"
            items.append(twin)
        return {"entries": items, "websites": websites}


def answers(
    dataset: dict[str, Any], *, page_size: int = PAGE_SIZE, base: str = "http://127.0.0.1"
) -> list[dict[str, Any]]:
    """The whole dataset as consecutive directory answers (for files imported directly)."""
    raw = [_with_base(item["entry"], base) for item in dataset["entries"]]
    pages = [raw[start : start + page_size] for start in range(0, len(raw), page_size)] or [[]]
    return [
        {"arztPraxisDatas": page, "moreResults": index < len(pages) - 1} for index, page in enumerate(pages)
    ]


def _with_base(entry: Any, base: str) -> Any:
    if isinstance(entry, dict) and isinstance(entry.get("web"), str) and BASE_PLACEHOLDER in entry["web"]:
        return {**entry, "web": entry["web"].replace(BASE_PLACEHOLDER, base)}
    return entry


def iter_entries(dataset: dict[str, Any]) -> Iterator[Any]:
    for item in dataset["entries"]:
        yield item["entry"]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m localcloud.directory_data", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--entries", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=116117)
    parser.add_argument(
        "--prefixes", default="", help="comma-separated 2-digit postcode prefixes (default: all)"
    )
    parser.add_argument("--clean", action="store_true", help="no malformed entries")
    parser.add_argument(
        "--answers",
        action="store_true",
        help="write directory answers (importable file) instead of a dataset",
    )
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    prefixes = [part.strip() for part in args.prefixes.split(",") if part.strip()]
    data = DirectoryDataGenerator(args.seed, prefixes=prefixes or None).dataset(
        args.entries, bad=not args.clean
    )
    document: Any = answers(data) if args.answers else data
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(document, ensure_ascii=False), encoding="utf-8")
    print(f"{len(data['entries'])} entries ({len(data['websites'])} websites) -> {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
