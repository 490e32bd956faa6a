"""One lxml element kept per parsed document keeps the whole (native) tree alive."""

from lxml import etree

EXPECTED = {
    "leak": True,
    "category": "growing_collection",
    "site": "real/leak_lxml_kept_elements.py#parse",
    "root": "_headers",
}

_headers: list[object] = []
DOC = (
    b"<feed>"
    + b"".join(
        b"<entry><title>t%d</title><body>%s</body></entry>" % (k, b"x" * 80) for k in range(20)
    )
    + b"</feed>"
)


def step(i: int) -> None:
    root = etree.fromstring(DOC)  # leak-site: parse
    _headers.append(root.find("entry"))
