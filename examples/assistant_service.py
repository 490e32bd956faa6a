"""A small AI-assistant service with one slow memory leak, for trying memlens.

It simulates a few hundred chat requests from a handful of users. Each request:

1. embeds the user's message (a deterministic stand-in for a model call) and
   keeps the vector in a *bounded* LRU cache;
2. retrieves the closest knowledge-base snippets;
3. builds a prompt from the system prompt, the snippets and the conversation
   history, which is *capped* at the last few turns per user;
4. "generates" a reply (a short sleep stands in for model latency);
5. records a summary of the exchange for analytics.

Steps 1 and 3 hold memory on purpose but within bounds. Step 5 is the bug: the
summaries go into a module-level dict keyed by request id that nothing ever
prunes, so memory grows with every request served. ``memlens run`` on this
script shows the growth and points at the line that allocates it.

Run it:  memlens run examples/assistant_service.py
Options: --requests N (default 400), --users N, --latency SECONDS, --seed N
"""

from __future__ import annotations

import argparse
import hashlib
import math
import operator
import random
import time
from array import array
from collections import OrderedDict, deque
from dataclasses import dataclass, field

EMBEDDING_DIMS = 64
SYSTEM_PROMPT = (
    "You are Orbit, a helpful assistant for a cloud hosting company. Answer briefly, "
    "cite the knowledge-base article you used, and never invent prices."
)
KNOWLEDGE_BASE = [
    "Billing: invoices are issued on the first day of each month.",
    "Scaling: each instance type can be resized without downtime.",
    "Backups: snapshots are kept for 30 days on the standard plan.",
    "Regions: data stays in the region chosen when the project was created.",
    "Support: the premium plan includes a one-hour response time.",
    "Networking: private networks are free within a region.",
    "Security: two-factor authentication can be enforced per organization.",
    "Storage: volumes can be attached to one instance at a time.",
]
TOPICS = ["invoice", "resize", "snapshot", "region", "support", "network", "2fa", "volume"]

# The leak: every request adds an entry and nothing ever removes one.
_REQUEST_SUMMARIES: dict[str, dict[str, object]] = {}


def embed(text: str) -> array:
    """A deterministic pseudo-embedding: a unit vector derived from the text's hash."""
    raw = array("b", hashlib.shake_256(text.encode()).digest(EMBEDDING_DIMS))
    norm = math.sqrt(sum(v * v for v in raw)) or 1.0
    return array("f", [v / norm for v in raw])


def cosine(a: array, b: array) -> float:
    return sum(map(operator.mul, a, b))


class EmbeddingCache:
    """An LRU cache of embeddings with a fixed number of entries (bounded: fine)."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._items: OrderedDict[str, array] = OrderedDict()
        self.hits = 0
        self.misses = 0

    def get(self, text: str) -> array:
        vector = self._items.get(text)
        if vector is not None:
            self._items.move_to_end(text)
            self.hits += 1
            return vector
        self.misses += 1
        vector = embed(text)
        self._items[text] = vector
        if len(self._items) > self.capacity:
            self._items.popitem(last=False)
        return vector


@dataclass
class Conversation:
    """One user's recent turns; older turns fall off the end (bounded: fine)."""

    user: str
    turns: deque[tuple[str, str]] = field(default_factory=lambda: deque(maxlen=6))


class AssistantService:
    def __init__(self, latency: float, rng: random.Random) -> None:
        self.latency = latency
        self.rng = rng
        self.cache = EmbeddingCache(capacity=128)
        self.conversations: dict[str, Conversation] = {}
        self.kb_vectors = [embed(doc) for doc in KNOWLEDGE_BASE]
        self.served = 0

    def retrieve(self, query_vector: array, k: int = 2) -> list[str]:
        scored = sorted(
            zip(KNOWLEDGE_BASE, self.kb_vectors),
            key=lambda item: cosine(query_vector, item[1]),
            reverse=True,
        )
        return [doc for doc, _ in scored[:k]]

    def build_prompt(self, conversation: Conversation, message: str, snippets: list[str]) -> str:
        history = "\n".join(f"User: {q}\nAssistant: {a}" for q, a in conversation.turns)
        context = "\n".join(f"[kb] {s}" for s in snippets)
        return f"{SYSTEM_PROMPT}\n\n{context}\n\n{history}\nUser: {message}\nAssistant:"

    def generate(self, prompt: str, snippets: list[str]) -> str:
        time.sleep(self.latency)  # stands in for the model call
        source = snippets[0].split(":")[0]
        return f"According to our {source} article: {snippets[0].split(': ', 1)[1]}"

    def handle(self, request_id: str, user: str, message: str) -> str:
        conversation = self.conversations.setdefault(user, Conversation(user))
        snippets = self.retrieve(self.cache.get(message))
        prompt = self.build_prompt(conversation, message, snippets)
        reply = self.generate(prompt, snippets)
        conversation.turns.append((message, reply))
        record_summary(request_id, user, prompt, reply, self.cache.get(message))
        self.served += 1
        return reply


def record_summary(request_id: str, user: str, prompt: str, reply: str, vector: array) -> None:
    """Keep an analytics summary of one exchange (the leak: never evicted)."""
    _REQUEST_SUMMARIES[request_id] = {
        "user": user,
        "prompt": prompt,
        "reply": reply,
        "word_lengths": [len(word) for word in prompt.split()],
        "query_embedding": list(vector),
    }


def make_message(rng: random.Random) -> str:
    topic = rng.choice(TOPICS)
    variant = rng.randrange(40)
    return f"Question {variant} about {topic}: how does {topic} work on my plan?"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=400, help="requests to serve")
    parser.add_argument("--users", type=int, default=12, help="distinct users")
    parser.add_argument("--latency", type=float, default=0.007, help="simulated model seconds")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()

    rng = random.Random(args.seed)
    service = AssistantService(args.latency, rng)
    started = time.perf_counter()
    print(f"assistant: serving {args.requests} requests from {args.users} users")
    for n in range(1, args.requests + 1):
        user = f"user-{rng.randrange(args.users)}"
        service.handle(f"req-{n:06d}", user, make_message(rng))
        if n % max(1, args.requests // 4) == 0:
            print(f"assistant: {n} requests served, {len(_REQUEST_SUMMARIES)} summaries kept")
    elapsed = time.perf_counter() - started
    total = service.cache.hits + service.cache.misses
    print(
        f"assistant: done in {elapsed:.1f} s; embedding cache hit rate "
        f"{service.cache.hits / total:.0%} ({len(service.cache._items)} entries, bounded)"
    )


if __name__ == "__main__":
    main()
