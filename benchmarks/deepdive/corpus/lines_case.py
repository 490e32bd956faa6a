"""A script with known line-level answers (see truth.json, "lines").

- ``kept.append(bytes(1000))`` keeps ~1 MiB to the end;
- ``big = [...]`` is the peak (~5 MiB) and is freed before the end;
- ``tmp = bytearray(200_000)`` is the hottest allocator: 400 × 200 KB, all short-lived;
- ``text += line`` grows a string by copying it every time;
- ``sum([...])`` builds a list only to add it up.
"""

kept = []


def keep() -> None:
    for _ in range(1000):
        kept.append(bytes(1000))


def peak() -> int:
    big = [bytes(100) for _ in range(50_000)]
    return len(big)


def churn() -> int:
    total = 0
    for _ in range(400):
        tmp = bytearray(200_000)
        total += len(tmp)
    return total


def concat() -> int:
    text = ""
    for i in range(1500):
        line = f"line {i:05d} " * 4
        text += line
    return len(text)


def squares() -> int:
    return sum([i * i for i in range(20_000)])


keep()
peak()
churn()
concat()
squares()
