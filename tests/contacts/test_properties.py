"""Properties of the normalisers over arbitrary text (no Spark)."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from contact_spark.config.contacts import ContactSettings
from contact_spark.contacts import reasons as R
from contact_spark.contacts.emails import normalize_email
from contact_spark.contacts.masking import mask_email, mask_phone
from contact_spark.contacts.normalize import email_rules, normalize_contact
from contact_spark.contacts.phones import normalize_phone

RULES = email_rules(ContactSettings())
PHONE_LIKE = st.text(alphabet="0123456789 +-./()", max_size=25)
EMAIL_LIKE = st.builds(
    lambda a, b, c: f"{a}@{b}.{c}",
    st.text(alphabet="abcXYZ09._+-", min_size=0, max_size=12),
    st.text(alphabet="abcdeXY-09", min_size=0, max_size=12),
    st.sampled_from(["com", "it", "IT", "ru", "c"]),
)


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.none(), st.text(max_size=40), PHONE_LIKE))
def test_phone_normaliser_never_raises_and_is_idempotent(raw: str | None) -> None:
    """Any text yields a value or a rejection code; a normalised number normalises to itself."""
    result = normalize_phone(raw, "IT")
    assert (result.value is None) != (result.error is None)
    if result.error:
        assert result.error in R.REJECTIONS
    else:
        assert result.value and result.value.startswith("+")
        assert normalize_phone(result.value, "IT") == result
        assert normalize_phone(result.value, "DE").value == result.value


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.none(), st.text(max_size=40), EMAIL_LIKE))
def test_email_normaliser_never_raises_and_is_idempotent(raw: str | None) -> None:
    result = normalize_email(raw, RULES)
    assert (result.value is None) != (result.error is None)
    if result.error:
        assert result.error in R.REJECTIONS
    else:
        assert normalize_email(result.value, RULES) == result
        assert normalize_email(f"  {result.value.upper()} ", RULES).value == result.value


@settings(max_examples=200, deadline=None)
@given(st.one_of(st.none(), st.text(max_size=30)), st.one_of(st.none(), st.text(max_size=8)))
def test_any_kind_and_value_give_a_result(kind: str | None, raw: str | None) -> None:
    result = normalize_contact(kind, raw, "IT", RULES)
    assert (result.value is None) != (result.error is None)


@given(st.text(alphabet="0123456789", min_size=6, max_size=20))
def test_masked_phone_hides_at_least_six_digits_and_shows_only_the_last_two(digits: str) -> None:
    masked = mask_phone(digits) or ""
    assert len(masked) == len(digits)
    assert masked.count("*") >= 6
    shown = masked.lstrip("*")
    assert len(shown) <= 2 and digits.endswith(shown)


@given(st.text(alphabet="0123456789 +-", min_size=1, max_size=25))
def test_a_masked_phone_leaves_a_million_candidates_at_least(text: str) -> None:
    masked = mask_phone(text) or ""
    if any(ch.isdigit() for ch in text):
        assert masked.count("*") >= 6


@given(st.text(alphabet="abcdefghij.", min_size=3, max_size=20))
def test_masked_email_shows_only_the_first_character_of_the_local_part(local: str) -> None:
    masked = mask_email(f"{local}@gmail.com") or ""
    assert masked == f"{local[0]}***@gmail.com"
