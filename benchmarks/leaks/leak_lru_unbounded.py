"""functools.lru_cache(maxsize=None) on prompts that never repeat."""

from leakapp.tokens import count_tokens

EXPECTED = {
    "leak": True,
    "category": "unbounded_memo",
    "site": "leakapp/tokens.py#lru",
    "root": "tokenize",
}


def step(i: int) -> None:
    count_tokens(f"please summarize document number {i} for user {i * 7} " * 4)
