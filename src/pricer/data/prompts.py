"""The reference system's prompt format (price-is-right.md, section 1).

train: "How much does this cost to the nearest dollar?\n\n{text}\n\nPrice is ${round(price)}.00"
test:  the same up to and including "Price is $".
"""

QUESTION = "How much does this cost to the nearest dollar?"
PRICE_PREFIX = "Price is $"


def test_prompt(text: str, question: str = QUESTION) -> str:
    """What the model sees at prediction time; it must continue with the price."""
    return f"{question}\n\n{text}\n\n{PRICE_PREFIX}"


def completion(price: float) -> str:
    """What the model learns to write after the prefix: whole dollars and `.00`, as the reference."""
    return f"{round(price)}.00"


def train_prompt(text: str, price: float, question: str = QUESTION) -> str:
    return test_prompt(text, question) + completion(price)


def as_test_prompt(text: str, question: str = QUESTION) -> str:
    """Accept a bare description, a test prompt or a full training prompt; return the test prompt."""
    if PRICE_PREFIX in text and text.startswith(question):
        return text[: text.rindex(PRICE_PREFIX) + len(PRICE_PREFIX)]
    return test_prompt(text, question)


def description(prompt: str, question: str = QUESTION) -> str:
    """The item description inside a prompt (inverse of `test_prompt`)."""
    text = as_test_prompt(prompt, question)
    return text[len(question) + 2 : -len(PRICE_PREFIX) - 2]


def format_prompt(prompt_or_text: str, fmt: str = "2024", tokenizer=None) -> str:  # TEMP shim until h2-formats lands
    return as_test_prompt(prompt_or_text)
