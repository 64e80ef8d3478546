"""Personnummer validation, masking, encryption at rest and the blind lookup hash."""

from __future__ import annotations

import re
from datetime import date, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import BaseModel, ConfigDict

from core.codec import DecryptionError, KeyRing
from core.identity import (
    IdentityProtector,
    InvalidPersonalIdentityNumber,
    PersonalIdentityNumber,
    parse_personnummer,
)

TODAY = date(2024, 6, 1)
LOOKUP_KEY = b"L" * 32


def luhn_valid(digits: str) -> bool:
    """Textbook Luhn, doubling every second digit from the right; independent of the code."""
    total = 0
    for position, char in enumerate(reversed(digits)):
        value = int(char) * (2 if position % 2 else 1)
        total += value - 9 if value > 9 else value
    return total % 10 == 0


def with_check_digit(yymmdd: str, serial3: str) -> str:
    """The 10-digit form YYMMDDNNNC with the one check digit Luhn accepts."""
    [number] = [n for c in "0123456789" if luhn_valid(n := f"{yymmdd}{serial3}{c}")]
    return number


def protector(*key_ids: str, lookup_key: bytes = LOOKUP_KEY) -> IdentityProtector:
    keys = {key_id: KeyRing.generate(key_id).keys[key_id] for key_id in key_ids}
    return IdentityProtector(KeyRing(keys=keys, active_key_id=key_ids[0]), lookup_key)


def reason_for(value: str, today: date = TODAY) -> str:
    with pytest.raises(InvalidPersonalIdentityNumber) as exc_info:
        parse_personnummer(value, today=today)
    return exc_info.value.reason


# --- valid numbers ---------------------------------------------------------------------------


def test_documented_examples_pass_the_independent_luhn_check() -> None:
    # Guards the fixtures below: if these fail, the tests would be checking invalid numbers.
    assert luhn_valid("8112189876")
    assert luhn_valid("9001010017")
    assert luhn_valid("7010632391")
    assert not luhn_valid("8112189875")


@pytest.mark.parametrize(
    "value", ["19811218-9876", "198112189876", "811218-9876", "8112189876", " 811218-9876 "]
)
def test_every_accepted_format_normalises_to_twelve_digits(value: str) -> None:
    pnr = parse_personnummer(value, today=TODAY)

    assert pnr.value == "198112189876"
    assert pnr.birth_date == date(1981, 12, 18)
    assert not pnr.is_coordination_number


def test_coordination_number_with_day_plus_60_is_valid() -> None:
    pnr = parse_personnummer("701063-2391", today=TODAY)

    assert pnr.value == "197010632391"
    assert pnr.is_coordination_number
    assert pnr.birth_date == date(1970, 10, 3)


def test_number_born_today_is_valid() -> None:
    ten = with_check_digit(TODAY.strftime("%y%m%d"), "123")

    assert parse_personnummer(ten, today=TODAY).birth_date == TODAY


# --- the personnummer project's public test vectors -----------------------------------------

# The shared test list of the personnummer libraries (github.com/personnummer/meta,
# testdata/list.json): each number in its four written forms, whether it is valid, and
# whether it is a personnummer (ssn) or a coordination number (con).
# (long, short, separated, separated long, valid, type)
PERSONNUMMER_VECTORS = [
    ("201509160006", "1509160006", "150916-0006", "20150916-0006", False, "ssn"),  # serial 000
    ("190905271474", "0905271474", "090527+1474", "19090527+1474", True, "ssn"),  # 100+
    ("198707049996", "8707049996", "870704-9996", "19870704-9996", False, "ssn"),
    ("198211059954", "8211059954", "821105-9954", "19821105-9954", True, "ssn"),
    ("193901829913", "3901829913", "390182-9913", "19390182-9913", False, "con"),
    ("195705749959", "5705749959", "570574-9959", "19570574-9959", True, "con"),
    ("201211209941", "1211209941", "121120-9941", "20121120-9941", False, "ssn"),
    ("199012119948", "9012119948", "901211-9948", "19901211-9948", True, "ssn"),
    ("201210759984", "1210759984", "121075-9984", "20121075-9984", False, "con"),
    ("197306749982", "7306749982", "730674-9982", "19730674-9982", True, "con"),
    ("187912219990", "7912219990", "791221+9990", "18791221+9990", True, "ssn"),  # 100+
    ("200012099891", "0012099891", "001209-9891", "20001209-9891", True, "ssn"),
    ("19090527 1474", "090527 1474", "090527 1474", "19090527 1474", False, "ssn"),  # space
]
# The vectors' short form without a separator reads as under 100, which is a different
# (younger) person for the two centenarians: valid, but not the same 12 digits.
_UNDER_100_READING = {"0905271474": "200905271474", "7912219990": "197912219990"}


def _vector_cases() -> list[tuple[str, bool, str, str]]:
    cases = []
    for long, short, separated, separated_long, valid, kind in PERSONNUMMER_VECTORS:
        for form in (long, short, separated, separated_long):
            expected = _UNDER_100_READING.get(form, long)
            cases.append((form, valid, kind, expected))
    return cases


@pytest.mark.parametrize(("value", "valid", "kind", "normalised"), _vector_cases())
def test_public_personnummer_vectors(value: str, valid: bool, kind: str, normalised: str) -> None:
    if not valid:
        with pytest.raises(InvalidPersonalIdentityNumber):
            parse_personnummer(value, today=TODAY)
        return

    pnr = parse_personnummer(value, today=TODAY)

    assert pnr.value == normalised
    assert pnr.is_coordination_number == (kind == "con")


def test_serial_000_is_never_issued() -> None:
    assert reason_for("201509160006") == "serial number 000 is never issued"
    assert reason_for("150916-0006") == "serial number 000 is never issued"


def test_twelve_digit_form_with_plus_means_a_hundred_or_older() -> None:
    assert parse_personnummer("19090527+1474", today=TODAY).birth_date == date(1909, 5, 27)
    # 1924 turns 100 in 2024: '+' applies from January of that year, as in the 10-digit form.
    ten = with_check_digit("241201", "123")
    assert parse_personnummer(f"19{ten[:6]}+{ten[6:]}", today=TODAY).birth_date.year == 1924
    # Someone born in 1981 is not 100: the '+' contradicts the stated century.
    assert reason_for("19811218+9876") == "'+' is only used from the year of the 100th birthday"


# --- century rules ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value_prefix", "separator", "birth_year"),
    [
        ("240101", "-", 2024),  # born this year
        ("250101", "-", 1925),  # 99 this year: still a hyphen
        ("240101", "+", 1924),  # turned 100 this year
        ("241201", "+", 1924),  # turns 100 later this year: '+' applies from January
        ("990101", "-", 1999),
        ("990101", "+", 1899),
        ("000101", "-", 2000),
    ],
)
def test_ten_digit_century_follows_the_separator(
    value_prefix: str, separator: str, birth_year: int
) -> None:
    ten = with_check_digit(value_prefix, "123")

    pnr = parse_personnummer(f"{ten[:6]}{separator}{ten[6:]}", today=TODAY)

    assert pnr.birth_date.year == birth_year
    assert pnr.value == f"{birth_year}{ten[2:]}"


def test_ten_digit_without_separator_is_read_as_under_100() -> None:
    ten = with_check_digit("250101", "123")

    assert parse_personnummer(ten, today=TODAY).birth_date == date(1925, 1, 1)


def test_hyphen_for_a_date_later_this_year_is_a_future_birth_not_a_centenarian() -> None:
    # Someone born 1924-12-01 writes '+' all through 2024, so '-' can only mean 2024-12-01.
    ten = with_check_digit("241201", "123")

    assert reason_for(f"{ten[:6]}-{ten[6:]}") == "date is in the future"


# --- rejected numbers ------------------------------------------------------------------------


def test_wrong_check_digit_is_rejected() -> None:
    assert reason_for("19811218-9875") == "check digit does not match"


@pytest.mark.parametrize(
    "yymmdd",
    [
        "230231",  # 31 February
        "230229",  # 29 February outside a leap year
        "230291",  # coordination number for 31 February
        "231301",  # month 13
        "230100",  # day 0
        "230160",  # day 0 as a coordination number
    ],
)
def test_impossible_calendar_date_is_rejected(yymmdd: str) -> None:
    ten = with_check_digit(yymmdd, "123")

    assert reason_for(f"20{ten}") == "not a valid date"


def test_leap_day_is_valid_in_a_leap_year() -> None:
    ten = with_check_digit("240229", "123")

    assert parse_personnummer(f"20{ten}", today=TODAY).birth_date == date(2024, 2, 29)


def test_birth_date_after_today_is_rejected() -> None:
    tomorrow = TODAY + timedelta(days=1)
    ten = with_check_digit(tomorrow.strftime("%y%m%d"), "123")

    assert reason_for(f"20{ten}") == "date is in the future"


@pytest.mark.parametrize(
    "value",
    [
        "",
        "19811218-987",  # serial too short
        "1981121-89876",  # hyphen in the wrong place
        "198112189876x",
        "19811218 9876",
        "811218--9876",
        "811218_9876",
        "\u0668\u0661\u0661\u0662\u0661\u0668\u0669\u0668\u0667\u0666",  # Arabic-Indic digits
    ],
)
def test_malformed_input_is_rejected_as_wrong_format(value: str) -> None:
    assert reason_for(value) == "wrong format"


@pytest.mark.parametrize(
    "value",
    [
        "19811218-9875",
        "811218-9875",
        "8112189875",
        "20230231-1234",
        "20990101-1234",
        "19811218+9876",
        "19811218-987",
    ],
)
def test_error_message_never_contains_the_input(value: str) -> None:
    with pytest.raises(InvalidPersonalIdentityNumber) as exc_info:
        parse_personnummer(value, today=TODAY)

    shown = f"{exc_info.value} {exc_info.value!r} {exc_info.value.args}"
    for fragment in {value, re.sub(r"\D", "", value), value[-4:], value[:6]}:
        assert fragment not in shown


# --- masking ---------------------------------------------------------------------------------


def test_repr_and_str_mask_the_number() -> None:
    pnr = parse_personnummer("19811218-9876", today=TODAY)

    class Employee(BaseModel):
        model_config = ConfigDict(arbitrary_types_allowed=True)
        pnr: PersonalIdentityNumber

    for shown in (repr(pnr), str(pnr), f"{pnr}", repr([pnr]), repr(Employee(pnr=pnr))):
        assert "9876" not in shown
        assert "811218" not in shown
    assert repr(pnr) == "PersonalIdentityNumber(****)"


def test_constructing_from_a_non_normalised_value_is_refused() -> None:
    with pytest.raises(InvalidPersonalIdentityNumber, match="wrong format"):
        PersonalIdentityNumber("811218-9876")


# --- protection at rest ----------------------------------------------------------------------


def test_encrypted_number_decrypts_and_hides_the_digits() -> None:
    pnr = parse_personnummer("19811218-9876", today=TODAY)
    guard = protector("k1")

    token = guard.encrypt(pnr)

    assert b"9876" not in token
    assert b"811218" not in token
    assert guard.encrypt(pnr) != token  # fresh nonce each time
    assert guard.decrypt(token) == pnr


def test_number_encrypted_under_old_key_decrypts_after_rotation() -> None:
    pnr = parse_personnummer("19811218-9876", today=TODAY)
    old_ring = KeyRing.generate("k1")
    old = IdentityProtector(old_ring, LOOKUP_KEY)
    token = old.encrypt(pnr)
    rotated_ring = KeyRing(
        keys={"k2": KeyRing.generate("k2").keys["k2"], **old_ring.keys}, active_key_id="k2"
    )
    rotated = IdentityProtector(rotated_ring, LOOKUP_KEY)

    assert rotated.decrypt(token) == pnr
    assert rotated.encrypt(pnr)[2:4] == b"k2"


def test_unknown_key_id_fails_closed() -> None:
    token = protector("retired").encrypt(parse_personnummer("19811218-9876", today=TODAY))

    with pytest.raises(DecryptionError, match="not in the key ring"):
        protector("k2").decrypt(token)


@pytest.mark.parametrize("position", [0, 1, 2, 4, 10, -1])
def test_any_tampered_byte_fails_closed(position: int) -> None:
    guard = protector("k1", "k2")
    token = bytearray(guard.encrypt(parse_personnummer("19811218-9876", today=TODAY)))
    token[position] ^= 0x01

    with pytest.raises(DecryptionError):
        guard.decrypt(bytes(token))


@pytest.mark.parametrize("token", [b"", b"\x01", b"\x01\x02k1", b"\x01\x02k1" + bytes(20)])
def test_truncated_token_fails_closed(token: bytes) -> None:
    with pytest.raises(DecryptionError):
        protector("k1").decrypt(token)


def test_lookup_hash_is_stable_across_input_formats_and_instances() -> None:
    a = parse_personnummer("19811218-9876", today=TODAY)
    b = parse_personnummer("8112189876", today=TODAY)

    digest = protector("k1").lookup_hash(a)

    assert re.fullmatch(r"[0-9a-f]{64}", digest)
    assert protector("k2").lookup_hash(b) == digest
    assert "198112189876" not in digest


def test_lookup_hash_depends_on_the_secret_key() -> None:
    pnr = parse_personnummer("19811218-9876", today=TODAY)

    assert protector("k1").lookup_hash(pnr) != protector("k1", lookup_key=b"M" * 32).lookup_hash(
        pnr
    )


def test_short_lookup_key_is_rejected_without_showing_it() -> None:
    with pytest.raises(ValueError, match="at least 32 bytes") as exc_info:
        protector("k1", lookup_key=b"tiny-secret")

    assert "tiny-secret" not in str(exc_info.value)


# --- property: every valid number survives the whole path ------------------------------------


@st.composite
def valid_numbers(draw: st.DrawFn) -> tuple[str, str, date]:
    """(input as a user might type it, expected 12-digit value, today)."""
    today = draw(st.dates(min_value=date(1950, 1, 1), max_value=date(2100, 12, 31)))
    birth = draw(st.dates(min_value=date(today.year - 150, 1, 1), max_value=today))
    coordination = draw(st.booleans())
    day = birth.day + (60 if coordination else 0)
    # Birth number 000 is never issued.
    serial = draw(st.integers(min_value=1, max_value=999))
    ten = with_check_digit(f"{birth:%y%m}{day:02d}", f"{serial:03d}")
    expected = f"{birth.year:04d}{ten[2:]}"
    separator = "+" if today.year - birth.year >= 100 else "-"
    forms = [
        expected,
        f"{expected[:8]}{separator}{expected[8:]}",
        f"{ten[:6]}{separator}{ten[6:]}",
    ]
    if separator == "-":
        forms.append(ten)
    return draw(st.sampled_from(forms)), expected, today


GUARD = protector("k1")


@given(valid_numbers())
def test_any_valid_number_round_trips_parse_encrypt_and_hash(
    case: tuple[str, str, date],
) -> None:
    value, expected, today = case

    pnr = parse_personnummer(value, today=today)

    assert pnr.value == expected
    assert GUARD.decrypt(GUARD.encrypt(pnr)) == pnr
    assert GUARD.lookup_hash(pnr) == GUARD.lookup_hash(PersonalIdentityNumber(expected))
