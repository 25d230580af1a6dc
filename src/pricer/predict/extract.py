"""Read a price out of generated text, with the reference's rules (price-is-right.md, section 6).

Reference (`extract_price`): take the text after "Price is $" if present, drop "$" and ",",
return the first match of `[-+]?\\d*\\.\\d+|\\d+` as a float, else 0. We return None instead of 0
for "no number", so callers can tell a miss from a guess of $0 (the harness scores None as 0).
"""

import re

from pricer.data.prompts import PRICE_PREFIX

NUMBER = re.compile(r"[-+]?\d*\.\d+|\d+")


def extract_price(text: str) -> float | None:
    """First number after "Price is $" (or in the whole text when the prefix is absent)."""
    if PRICE_PREFIX in text:
        text = text.split(PRICE_PREFIX)[1]  # as the reference: up to a repeated prefix, if any
    text = text.replace(",", "").replace("$", "")
    match = NUMBER.search(text)
    return float(match.group()) if match else None
