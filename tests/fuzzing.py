"""A seeded mutator of ERP exports, shared by the in-process and the CLI fuzz tests.

`mutate(data, rng)` applies one to three byte-level mutations (flips, cuts, quotes, delimiters,
line ends, NUL bytes, BOMs, invisible characters, re-encodings, shuffled and duplicated lines)
and names what it did, so that a failing case can be replayed from its seed and described.
"""

from __future__ import annotations

import codecs
import random
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

HEADER = (
    "erp_customer_number,name,email,default_currency,default_language,notes,"
    "billing_street,billing_city,billing_postal_code,billing_country,"
    "contact_email,contact_name,contact_phone,contact_role,contact_is_primary"
)

# A file whose cells start with what a spreadsheet runs (= + - @), with quoted delimiters,
# quotes and newlines, and a customer over several rows: the reports must neutralise its cells.
FORMULA_EXPORT = "\r\n".join(
    [
        HEADER,
        '=SUM(A1:A2),Acme,info@acme.example,EUR,en,"=1+2",Main 1,Wien,1010,AT,'
        "a@acme.example,Ann,+43 1 234,-buyer,x",
        '=SUM(A1:A2),Acme,info@acme.example,EUR,en,"=1+2",Main 1,Wien,1010,AT,'
        "b@acme.example,Bob,+43 1 235,@role,n",
        '+100,"Beta; ""quoted"", AG",,XXX,de-AT,"line one\nline two",,,,,,,,,',
        "-7,Gamma,gamma@example.com,chf,fr_ch,@notes,,,,,c@gamma.example,Cy,,=cmd,maybe",
        "@9,Delta,not-an-email,EUR,xx-invalid-,,,,,,,,,,",
        "0042,Épsilon Café,eps@example.com,eur,de_de,Zürich,Bahnhofstraße 1,Zürich,8001,CH,,,,,",
        "0042,Épsilon Café,eps@example.com,eur,de_de,Zürich,Bahnhofstraße 1,Zürich,8001,CH,"
        "e@eps.example,Eve,,,true",
        "0043,Zeta,,USD,en-US,,,,,,,,,,",
    ]
)

SEED_FILES = (
    REPO / "sample_data" / "inbox" / "acme-gmbh" / "kunden_2026-11-20.csv",
    REPO / "sample_data" / "inbox" / "bistro-lyon" / "export_clients.csv",
    REPO / "sample_data" / "inbox" / "nordwind" / "customers-2026-11-21.csv",
)

# Small exports in the other encodings and delimiters the contract accepts.
TAB_EXPORT = "\n".join(
    [
        "erp_customer_number\tname\tdefault_currency\tdefault_language\tcontact_email",
        "T-1\tMüller\tEUR\tde\tm@mueller.example",
        'T-2\t"Tab\tin""name"""\tchf\tfr-CH\t',
    ]
)
PIPE_EXPORT = "\r\n".join(
    [
        "Name|ERP_Customer_Number|Default_Currency|Default_Language|Notes",
        "Søren Ærø|P-1|DKK|da|Straße € 5",
        "Æble|P-2|dkk|da_dk|",
    ]
)


def seed_exports() -> list[tuple[str, bytes]]:
    """(name, bytes) of the valid exports the mutations start from."""
    seeds = [(path.name, path.read_bytes()) for path in SEED_FILES]
    seeds.append(("formula_export.csv", FORMULA_EXPORT.encode("utf-8")))
    seeds.append(("utf16_tab_export.csv", TAB_EXPORT.encode("utf-16")))
    seeds.append(("cp1252_pipe_export.csv", PIPE_EXPORT.encode("cp1252")))
    return seeds


def text_of_seed(data: bytes) -> str:
    """The text of a seed export (UTF-16 with BOM, UTF-8 with or without BOM, else Windows-1252)."""
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return data.decode("utf-16")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return data.decode("cp1252")


# --- the mutations ------------------------------------------------------------------------------

Mutation = Callable[[bytes, random.Random], tuple[bytes, str]]

_INVISIBLE = ("\u200b", "\u00ad", "\ufeff")
_BOMS = {
    "utf-8 BOM": codecs.BOM_UTF8,
    "utf-16le BOM": codecs.BOM_UTF16_LE,
    "utf-16be BOM": codecs.BOM_UTF16_BE,
}


def _position(data: bytes, rng: random.Random) -> int:
    """An offset in `data` (0..len), moved off the middle of a UTF-8 sequence when it can be."""
    at = rng.randint(0, len(data))
    while 0 < at < len(data) and 0x80 <= data[at] < 0xC0:
        at += 1
    return at


def _insert(data: bytes, rng: random.Random, what: bytes, name: str) -> tuple[bytes, str]:
    at = _position(data, rng)
    return data[:at] + what + data[at:], f"{name} at {at}"


def byte_flip(data: bytes, rng: random.Random) -> tuple[bytes, str]:
    """Replace one byte with a random one."""
    if not data:
        return data, "byte flip (empty)"
    at = rng.randrange(len(data))
    new = rng.randrange(256)
    return data[:at] + bytes([new]) + data[at + 1 :], f"byte flip at {at} to 0x{new:02X}"


def cut(data: bytes, rng: random.Random) -> tuple[bytes, str]:
    """Truncate anywhere (even in the middle of a character)."""
    at = rng.randint(0, len(data))
    return data[:at], f"cut at {at}"


def insert_quote(data: bytes, rng: random.Random) -> tuple[bytes, str]:
    return _insert(data, rng, b'"', "quote")


def insert_delimiter(data: bytes, rng: random.Random) -> tuple[bytes, str]:
    delimiter = rng.choice((b",", b";", b"\t", b"|"))
    return _insert(data, rng, delimiter, f"delimiter {delimiter!r}")


def insert_line_end(data: bytes, rng: random.Random) -> tuple[bytes, str]:
    end = rng.choice((b"\r", b"\n", b"\r\n"))
    return _insert(data, rng, end, f"line end {end!r}")


def insert_nul(data: bytes, rng: random.Random) -> tuple[bytes, str]:
    return _insert(data, rng, b"\x00", "NUL")


def insert_bom(data: bytes, rng: random.Random) -> tuple[bytes, str]:
    name, bom = rng.choice(sorted(_BOMS.items()))
    if rng.random() < 0.5:
        return bom + data, f"{name} at start"
    return _insert(data, rng, bom, name)


def insert_invisible(data: bytes, rng: random.Random) -> tuple[bytes, str]:
    char = rng.choice(_INVISIBLE)
    return _insert(data, rng, char.encode("utf-8"), f"U+{ord(char):04X}")


def _text_of(data: bytes) -> str:
    """The text of `data` as the reader would see it (BOM-aware), undecodable bytes replaced."""
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return data.decode("utf-16", errors="replace")
    return data.decode("utf-8-sig", errors="replace")


def reencode(data: bytes, rng: random.Random) -> tuple[bytes, str]:
    """The whole file as UTF-16 with BOM, Windows-1252 or Latin-1 (unencodable characters: ?)."""
    codec = rng.choice(("utf-16", "cp1252", "latin-1"))
    return _text_of(data).encode(codec, errors="replace"), f"re-encoded to {codec}"


def _lines(data: bytes) -> list[bytes]:
    return data.split(b"\n")


def shuffle_lines(data: bytes, rng: random.Random) -> tuple[bytes, str]:
    """Shuffle the physical lines; half of the time the first (header) line stays first."""
    lines = _lines(data)
    keep_header = rng.random() < 0.5
    head, body = (lines[:1], lines[1:]) if keep_header else ([], lines)
    rng.shuffle(body)
    where = "data lines" if keep_header else "all lines"
    return b"\n".join(head + body), f"shuffled {where}"


def duplicate_lines(data: bytes, rng: random.Random) -> tuple[bytes, str]:
    """Copy one to three physical lines to random places."""
    lines = _lines(data)
    copies = rng.randint(1, 3)
    for _ in range(copies):
        line = rng.choice(lines)
        lines.insert(rng.randint(0, len(lines)), line)
    return b"\n".join(lines), f"duplicated {copies} line(s)"


MUTATIONS: dict[str, Mutation] = {
    "byte_flip": byte_flip,
    "cut": cut,
    "quote": insert_quote,
    "delimiter": insert_delimiter,
    "line_end": insert_line_end,
    "nul": insert_nul,
    "bom": insert_bom,
    "invisible": insert_invisible,
    "reencode": reencode,
    "shuffle": shuffle_lines,
    "duplicate": duplicate_lines,
}


@dataclass(frozen=True)
class Case:
    """One mutated export: where it came from and what was done to it."""

    seed: int
    origin: str
    steps: tuple[str, ...]
    data: bytes
    kinds: tuple[str, ...] = ()  # the names (keys of MUTATIONS) of the steps

    def __str__(self) -> str:
        return f"seed {self.seed}: {self.origin} <- {'; '.join(self.steps)}"


def mutated_case(seed: int, seeds: list[tuple[str, bytes]]) -> Case:
    """The case of `seed`: one seed export with one to three mutations, all drawn from `seed`."""
    rng = random.Random(seed)
    origin, data = rng.choice(seeds)
    steps, kinds = [], []
    for _ in range(rng.randint(1, 3)):
        name = rng.choice(sorted(MUTATIONS))
        data, what = MUTATIONS[name](data, rng)
        steps.append(what)
        kinds.append(name)
    return Case(seed, origin, tuple(steps), data, tuple(kinds))
