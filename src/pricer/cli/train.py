"""`pricer train` (issue 5)."""


def train() -> None:
    """Fine-tune a base model with LoRA / QLoRA."""
    raise NotImplementedError
